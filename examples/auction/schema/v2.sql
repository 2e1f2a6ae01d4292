-- Auction schema v2. What changed from v1 (see docs/sample-system.md):
--  * users.name split into first_name / last_name; balance in integer cents;
--  * money everywhere in BIGINT cents (*_cents);
--  * bids moved to `item_bids` with a new composite key (item_id, bid_id),
--    clustered by item so the bid history of an item is one range read;
--  * items carry a denormalised max_bid_cents / bid_count that v2 maintains
--    in the same transaction as each bid;
--  * new NOT NULL computed columns: categories.slug, items.search_name
--    (lower-cased name, indexed for search; replaces the v1 LIKE scan);
--  * index change: items by (category_id, end_date) instead of category_id;
--  * buy_now renamed to purchases; comments.comment renamed to body.
CREATE TABLE regions (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE categories (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  slug VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  first_name VARCHAR(50) NOT NULL,
  last_name VARCHAR(50) NOT NULL,
  nickname VARCHAR(50) NOT NULL,
  password VARCHAR(64) NOT NULL,
  email VARCHAR(100) NOT NULL,
  rating INT NOT NULL DEFAULT 0,
  balance_cents BIGINT NOT NULL DEFAULT 0,
  region_id INT NOT NULL,
  created_at DATETIME NOT NULL,
  UNIQUE KEY uk_users_nickname (nickname),
  KEY ix_users_region (region_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE items (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  search_name VARCHAR(100) NOT NULL,
  description TEXT NOT NULL,
  initial_price_cents BIGINT NOT NULL,
  quantity INT NOT NULL,
  reserve_price_cents BIGINT NOT NULL DEFAULT 0,
  buy_now_cents BIGINT NOT NULL DEFAULT 0,
  max_bid_cents BIGINT NOT NULL DEFAULT 0,
  bid_count INT NOT NULL DEFAULT 0,
  start_date DATETIME NOT NULL,
  end_date DATETIME NOT NULL,
  seller_id INT NOT NULL,
  category_id INT NOT NULL,
  KEY ix_items_category_end (category_id, end_date),
  KEY ix_items_seller (seller_id),
  KEY ix_items_search (search_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE item_bids (
  item_id INT NOT NULL,
  bid_id INT NOT NULL,
  user_id INT NOT NULL,
  qty INT NOT NULL DEFAULT 1,
  amount_cents BIGINT NOT NULL,
  created_at DATETIME NOT NULL,
  PRIMARY KEY (item_id, bid_id),
  UNIQUE KEY uk_item_bids_bid (bid_id),
  KEY ix_item_bids_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- v2 allocates bid ids itself (no AUTO_INCREMENT on a composite key): this
-- one-row table hands them out; the conversion leaves it alone and v2 starts
-- from max(bid_id) if it is behind (see v2/repository/bids.ts).
CREATE TABLE bid_sequence (
  id TINYINT NOT NULL PRIMARY KEY,
  next_id INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO bid_sequence VALUES (1, 1);

CREATE TABLE comments (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  from_user_id INT NOT NULL,
  to_user_id INT NOT NULL,
  item_id INT NOT NULL,
  rating INT NOT NULL,
  created_at DATETIME NOT NULL,
  body TEXT NOT NULL,
  KEY ix_comments_to_date (to_user_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE purchases (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  buyer_id INT NOT NULL,
  item_id INT NOT NULL,
  qty INT NOT NULL,
  created_at DATETIME NOT NULL,
  KEY ix_purchases_buyer (buyer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
