-- scripts/demo/shop.sql - the quickstart's demo dataset: a small shop
-- over two years (2024 and 2025).  Deterministic: every value comes from
-- the row number through fixed arithmetic, so every machine gets the
-- same rows and the README's answers hold everywhere.  Enough for "top
-- 10 customers by revenue", "monthly revenue in 2025" and "which
-- products never sold" (five products never appear in an order).
BEGIN;

CREATE TABLE customers (
    customer_id  integer PRIMARY KEY,
    name         text NOT NULL,
    email        text NOT NULL UNIQUE,
    city         text NOT NULL,
    country      text NOT NULL,
    signed_up    date NOT NULL
);

CREATE TABLE products (
    product_id   integer PRIMARY KEY,
    name         text NOT NULL,
    category     text NOT NULL,
    unit_price   numeric(10,2) NOT NULL
);

CREATE TABLE orders (
    order_id     integer PRIMARY KEY,
    customer_id  integer NOT NULL REFERENCES customers,
    ordered_at   timestamptz NOT NULL,
    status       text NOT NULL
);

CREATE TABLE order_items (
    order_id     integer NOT NULL REFERENCES orders,
    line         integer NOT NULL,
    product_id   integer NOT NULL REFERENCES products,
    quantity     integer NOT NULL,
    unit_price   numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);

COMMENT ON TABLE customers IS 'people who bought, or may buy, from the shop';
COMMENT ON TABLE products IS 'what the shop sells; unit_price is the list price';
COMMENT ON TABLE orders IS 'one row per order; status is paid, shipped or refunded';
COMMENT ON TABLE order_items IS 'the lines of an order; revenue is quantity * unit_price';

-- 120 customers: first and last names from two lists, cities with their
-- countries, sign-up dates spread over 2023-2025.
INSERT INTO customers
SELECT i,
       f.n || ' ' || l.n,
       lower(f.n || '.' || l.n || i) || '@example.com',
       c.city, c.country,
       date '2023-01-01' + ((i * 97) % 1000)
FROM generate_series(1, 120) AS i
JOIN LATERAL (SELECT (ARRAY['Ada','Bruno','Chloe','Dmitri','Elena','Farid',
    'Grace','Hiro','Ines','Jonas','Keiko','Liam','Maya','Nikolai','Olga',
    'Pablo','Quinn','Rosa','Sami','Tara'])[1 + (i * 7) % 20] AS n) f ON true
JOIN LATERAL (SELECT (ARRAY['Alvarez','Becker','Chen','Dubois','Eriksen',
    'Fischer','Garcia','Haddad','Ito','Jansen','Kowalski','Larsen'])
    [1 + (i * 5 + i / 20) % 12] AS n) l ON true
JOIN LATERAL (SELECT (ARRAY['Lisbon','Berlin','Lyon','Osaka','Toronto',
    'Austin','Nairobi','Krakow','Oslo','Madrid'])[1 + (i * 3) % 10] AS city,
    (ARRAY['Portugal','Germany','France','Japan','Canada','United States',
    'Kenya','Poland','Norway','Spain'])[1 + (i * 3) % 10] AS country) c ON true;

-- 40 products in five categories; 36 to 40 are never ordered.
INSERT INTO products
SELECT i,
       (ARRAY['Espresso Beans','Green Tea','Ceramic Mug','Pour-over Kettle',
         'Hand Grinder','Paper Filters','Travel Tumbler','Chai Blend'])
         [1 + (i - 1) % 8] || ' ' ||
       (ARRAY['Classic','Deluxe','Mini','Pro','Eco'])[1 + (i - 1) / 8],
       (ARRAY['coffee','tea','kitchenware','brewing','accessories'])
         [1 + (i - 1) % 5],
       round((4.5 + (i * 37) % 90 + ((i * 13) % 100) / 100.0)::numeric, 2)
FROM generate_series(1, 40) AS i;

-- 1500 orders over 2024-01-01 .. 2025-12-31 (730 days); busier in 2025.
INSERT INTO orders
SELECT i,
       1 + (i * i * 7 + i * 3) % 120,
       timestamptz '2024-01-01 09:00:00+00'
         + make_interval(days => CASE WHEN i <= 600 THEN (i * 366) / 600
                                      ELSE 366 + ((i - 600) * 364) / 900 END,
                         mins => (i * 53) % 600),
       CASE WHEN i % 29 = 0 THEN 'refunded'
            WHEN i % 3 = 0 THEN 'paid' ELSE 'shipped' END
FROM generate_series(1, 1500) AS i;

-- one to four lines per order, products 1..35 only, at the list price
-- (a 10% discount on every seventh line).
INSERT INTO order_items
SELECT o.order_id, l.line,
       p.product_id,
       1 + (o.order_id * 3 + l.line * 5) % 4,
       round(p.unit_price * CASE WHEN (o.order_id + l.line) % 7 = 0
                                 THEN 0.9 ELSE 1 END, 2)
FROM orders o
CROSS JOIN LATERAL generate_series(1, 1 + o.order_id % 4) AS l(line)
JOIN products p ON p.product_id = 1 + (o.order_id * 11 + l.line * 17) % 35;

CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (ordered_at);
CREATE INDEX ON order_items (product_id);
ANALYZE;
COMMIT;
