"""Default sizes of a generated store and the layout of the landing files it writes.

The column lists are the landing contract's column order for the orders, customers and products
feeds; every price is in `CURRENCY`.
"""

from __future__ import annotations

import datetime as dt

DEFAULT_CUSTOMERS = 2_000
DEFAULT_DAYS = 120
DEFAULT_END_DATE = dt.date(2026, 10, 31)
DEFAULT_SEED = 42
DEFAULT_PRODUCTS = 400
# Share of order lines and events written with a defect, so that every run exercises the
# quarantine (the defect kinds are in `generator.defects`).
DEFAULT_DEFECT_RATE = 0.002

ORDER_COLUMNS = [
    "order_id", "line_number", "customer_id", "ordered_at", "product_id", "quantity",
    "unit_price", "currency", "status", "channel", "shipping_country", "discount_amount",
]
CUSTOMER_COLUMNS = [
    "customer_id", "email", "phone", "first_name", "last_name", "birth_date", "gender", "city",
    "region", "postal_code", "country", "signup_at", "email_consent", "ads_consent", "updated_at",
    "is_deleted", "income_band",
]
PRODUCT_COLUMNS = [
    "product_id", "sku", "name", "category", "subcategory", "brand", "price", "currency",
    "is_active", "updated_at",
]
CURRENCY = "EUR"
