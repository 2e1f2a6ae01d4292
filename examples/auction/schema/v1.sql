-- Auction schema v1 (RUBiS-like). Money is DECIMAL(12,2); a user's name is one
-- column; the current maximum bid and bid count of an item are computed from
-- `bids` at read time. Every table has a primary key (the data transfer needs one).
CREATE TABLE regions (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE categories (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(101) NOT NULL,
  nickname VARCHAR(50) NOT NULL,
  password VARCHAR(64) NOT NULL,
  email VARCHAR(100) NOT NULL,
  rating INT NOT NULL DEFAULT 0,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  region_id INT NOT NULL,
  created_at DATETIME NOT NULL,
  UNIQUE KEY uk_users_nickname (nickname),
  KEY ix_users_region (region_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE items (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  description TEXT NOT NULL,
  initial_price DECIMAL(12,2) NOT NULL,
  quantity INT NOT NULL,
  reserve_price DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  buy_now DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  start_date DATETIME NOT NULL,
  end_date DATETIME NOT NULL,
  seller_id INT NOT NULL,
  category_id INT NOT NULL,
  KEY ix_items_category (category_id),
  KEY ix_items_seller (seller_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE bids (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL,
  item_id INT NOT NULL,
  qty INT NOT NULL DEFAULT 1,
  amount DECIMAL(12,2) NOT NULL,
  created_at DATETIME NOT NULL,
  KEY ix_bids_item (item_id),
  KEY ix_bids_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE comments (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  from_user_id INT NOT NULL,
  to_user_id INT NOT NULL,
  item_id INT NOT NULL,
  rating INT NOT NULL,
  created_at DATETIME NOT NULL,
  comment TEXT NOT NULL,
  KEY ix_comments_to (to_user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE buy_now (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  buyer_id INT NOT NULL,
  item_id INT NOT NULL,
  qty INT NOT NULL,
  created_at DATETIME NOT NULL,
  KEY ix_buy_now_buyer (buyer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
