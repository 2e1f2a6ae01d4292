/**
 * The rolling baseline's in-place schema migration, v1 → v2, "expand" style so
 * v1 and v2 front-ends can share the store during the roll: every v2 column
 * and table is added next to v1's (v1's stay), back-filled, and kept in step
 * for v1's writes by triggers. v2's writes to item_bids and purchases are NOT
 * copied back into v1's bids/buy_now (a trigger cycle between two tables is
 * refused by MariaDB), so during the mixed window v1 front-ends do not see
 * bids and purchases made through v2 front-ends: the classic mixed-version
 * inconsistency of rolling upgrades, documented in docs/fault-injection.md.
 * v2's generated ids start 1,000,000 above v1's so the two never collide.
 * No contract step: v1's columns stay after the roll.
 */
export const EXPAND_MIGRATION: string[] = [
  // categories.slug (slugOf: lower case, runs of non [a-z0-9] to '-', trimmed)
  "ALTER TABLE categories ADD COLUMN slug VARCHAR(64) NOT NULL DEFAULT ''",
  "UPDATE categories SET slug = TRIM(BOTH '-' FROM REGEXP_REPLACE(LOWER(name), '[^a-z0-9]+', '-'))",
  // users: split name, balance in cents
  `ALTER TABLE users MODIFY name VARCHAR(101) NOT NULL DEFAULT '',
     ADD COLUMN first_name VARCHAR(50) NOT NULL DEFAULT '', ADD COLUMN last_name VARCHAR(50) NOT NULL DEFAULT '',
     ADD COLUMN balance_cents BIGINT NOT NULL DEFAULT 0`,
  `UPDATE users SET first_name = SUBSTRING_INDEX(TRIM(name), ' ', 1),
     last_name = IF(LOCATE(' ', TRIM(name)) > 0, SUBSTRING(TRIM(name), LOCATE(' ', TRIM(name)) + 1), ''), balance_cents = ROUND(balance * 100)`,
  `CREATE TRIGGER fl_users_bi BEFORE INSERT ON users FOR EACH ROW BEGIN
     IF NEW.first_name = '' AND NEW.name <> '' THEN
       SET NEW.first_name = SUBSTRING_INDEX(TRIM(NEW.name), ' ', 1);
       SET NEW.last_name = IF(LOCATE(' ', TRIM(NEW.name)) > 0, SUBSTRING(TRIM(NEW.name), LOCATE(' ', TRIM(NEW.name)) + 1), '');
       SET NEW.balance_cents = ROUND(NEW.balance * 100);
     ELSEIF NEW.name = '' THEN
       SET NEW.name = TRIM(CONCAT(NEW.first_name, ' ', NEW.last_name));
       SET NEW.balance = NEW.balance_cents / 100;
     END IF;
   END`,
  // items: money in cents, denormalised max bid / count, search name, new index
  `ALTER TABLE items ADD COLUMN search_name VARCHAR(100) NOT NULL DEFAULT '',
     ADD COLUMN initial_price_cents BIGINT NOT NULL DEFAULT 0, ADD COLUMN reserve_price_cents BIGINT NOT NULL DEFAULT 0,
     ADD COLUMN buy_now_cents BIGINT NOT NULL DEFAULT 0, ADD COLUMN max_bid_cents BIGINT NOT NULL DEFAULT 0,
     ADD COLUMN bid_count INT NOT NULL DEFAULT 0,
     ADD KEY ix_items_category_end (category_id, end_date), ADD KEY ix_items_search (search_name)`,
  `UPDATE items i LEFT JOIN (SELECT item_id, MAX(amount) AS mx, COUNT(*) AS n FROM bids GROUP BY item_id) b ON b.item_id = i.id
     SET i.search_name = LOWER(i.name), i.initial_price_cents = ROUND(i.initial_price * 100), i.reserve_price_cents = ROUND(i.reserve_price * 100),
         i.buy_now_cents = ROUND(i.buy_now * 100), i.max_bid_cents = COALESCE(ROUND(b.mx * 100), 0), i.bid_count = COALESCE(b.n, 0)`,
  // bids → item_bids (v2's table), kept in step for v1's bids
  `CREATE TABLE item_bids (
     item_id INT NOT NULL, bid_id INT NOT NULL, user_id INT NOT NULL, qty INT NOT NULL DEFAULT 1, amount_cents BIGINT NOT NULL,
     created_at DATETIME NOT NULL, PRIMARY KEY (item_id, bid_id), UNIQUE KEY uk_item_bids_bid (bid_id), KEY ix_item_bids_user (user_id)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  'INSERT INTO item_bids SELECT item_id, id, user_id, qty, ROUND(amount * 100), created_at FROM bids',
  'CREATE TABLE bid_sequence (id TINYINT NOT NULL PRIMARY KEY, next_id INT NOT NULL) ENGINE=InnoDB',
  'INSERT INTO bid_sequence SELECT 1, COALESCE(MAX(id), 0) + 1000000 FROM bids',
  `CREATE TRIGGER fl_bids_ai AFTER INSERT ON bids FOR EACH ROW BEGIN
     INSERT INTO item_bids VALUES (NEW.item_id, NEW.id, NEW.user_id, NEW.qty, ROUND(NEW.amount * 100), NEW.created_at);
     UPDATE items SET max_bid_cents = GREATEST(max_bid_cents, ROUND(NEW.amount * 100)), bid_count = bid_count + 1 WHERE id = NEW.item_id;
   END`,
  // buy_now → purchases
  `CREATE TABLE purchases (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, buyer_id INT NOT NULL, item_id INT NOT NULL, qty INT NOT NULL,
     created_at DATETIME NOT NULL, KEY ix_purchases_buyer (buyer_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  'INSERT INTO purchases SELECT id, buyer_id, item_id, qty, created_at FROM buy_now',
  'ALTER TABLE purchases AUTO_INCREMENT = 1000000',
  'CREATE TRIGGER fl_buy_now_ai AFTER INSERT ON buy_now FOR EACH ROW INSERT INTO purchases VALUES (NEW.id, NEW.buyer_id, NEW.item_id, NEW.qty, NEW.created_at)',
  // comments.comment → body
  'ALTER TABLE comments MODIFY comment TEXT NULL, ADD COLUMN body TEXT NULL, ADD KEY ix_comments_to_date (to_user_id, created_at)',
  'UPDATE comments SET body = comment',
  `CREATE TRIGGER fl_comments_bi BEFORE INSERT ON comments FOR EACH ROW BEGIN
     IF NEW.body IS NULL THEN SET NEW.body = NEW.comment; END IF;
     IF NEW.comment IS NULL THEN SET NEW.comment = NEW.body; END IF;
   END`,
];
