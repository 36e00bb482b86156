"""The simulated world's parameters: catalogues, weights, shares and the file names it writes."""

from __future__ import annotations

from datetime import date

import numpy as np
import yaml

from analytics_pipeline.settings import DBT_PROJECT_DIR, Settings

# The product's activity catalogue: dbt_project.yml's `activity_catalogue`, the one place it is kept.
ACTIVITY_TYPES: tuple[str, ...] = tuple(
    yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["activity_catalogue"]
)
UNCATALOGUED_ACTIVITY_TYPES: tuple[str, ...] = ("export_grades", "print_certificate")
ORDER_STATUSES: tuple[str, ...] = ("completed", "refunded", "cancelled")
PLANS: tuple[str, ...] = ("free", "basic", "premium")
REGIONS: tuple[str, ...] = ("na-east", "na-west", "eu", "apac")
ROLES: tuple[str, ...] = ("student", "teacher", "staff", "admin")
CATEGORIES: tuple[str, ...] = (
    "books",
    "kits",
    "software",
    "stationery",
    "art_supplies",
    "electronics",
)

# the reject-rate check at its default settings: sample data made with a bad rate within its
# threshold passes it (see _defect_positions)
_DEFAULT_CHECK = Settings()

DATASETS: tuple[str, ...] = (
    "activity_events",
    "order_lines",
    "inventory_snapshots",
    "organizations",
    "users",
    "items",
)
EVENT_DEFECTS: tuple[str, ...] = (
    "truncated_json",
    "missing_field",
    "unparseable_timestamp",
    "wrong_date",
    "duplicate_event",
)
ORDER_DEFECTS: tuple[str, ...] = (
    "missing_field",
    "unparseable_timestamp",
    "wrong_date",
    "non_positive_quantity",
    "unknown_status",
)
INVENTORY_DEFECTS: tuple[str, ...] = ("negative_on_hand", "missing_field", "unparseable_date")

EVENT_FILES = ("events-part-0.jsonl", "events-part-1.jsonl.gz")
ORDER_FILE = "orders.csv"
INVENTORY_FILE = "inventory.csv.gz"
ORGANIZATION_FILE = "organizations.jsonl"
ORGANIZATION_UPDATES_FILE = "organizations-updates.jsonl"
USER_FILE = "users.csv"
ITEM_FILE = "items.parquet"

ORDER_COLUMNS = (
    "order_id",
    "line_no",
    "ordered_at",
    "org_id",
    "user_id",
    "item_id",
    "quantity",
    "unit_price",
    "unit_cost",
    "currency",
    "status",
)
INVENTORY_COLUMNS = ("snapshot_date", "item_id", "on_hand", "on_order", "reorder_point")
USER_COLUMNS = ("user_id", "org_id", "role", "created_at", "updated_at")

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
NEVER = 10**9
GZIP_LEVEL = 6

# Monday..Sunday. Events: a school day is ~1.0, weekends are quiet. Orders: almost none on weekends.
EVENT_WEEKDAY_FACTORS = (1.05, 1.1, 1.1, 1.0, 0.85, 0.25, 0.3)
ORDER_WEEKDAY_FACTORS = (1.1, 1.05, 1.05, 1.0, 0.9, 0.12, 0.08)
WEEKEND_ACTIVITY_FACTOR = 0.35

# Relative activity by local hour 0..23.
SCHOOL_DAY_HOURS = (
    0.2,
    0.1,
    0.1,
    0.1,
    0.2,
    0.5,
    1.5,
    4,
    9,
    11,
    11,
    10,
    8,
    9,
    9,
    7,
    5,
    4,
    4.5,
    5,
    4.5,
    3,
    1.5,
    0.6,
)
WEEKEND_HOURS = (
    0.5,
    0.3,
    0.2,
    0.2,
    0.2,
    0.4,
    0.8,
    1.5,
    2.5,
    3.5,
    4.5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5.5,
    5.5,
    4.5,
    3,
    1.5,
)
ORDERING_HOURS = (
    0,
    0,
    0,
    0,
    0,
    0,
    0.2,
    1,
    4,
    7,
    8,
    7,
    5,
    6,
    6,
    5,
    3,
    1,
    0.5,
    0.3,
    0.2,
    0.1,
    0,
    0,
)
REGION_WEIGHTS = (0.35, 0.25, 0.25, 0.15)
REGION_UTC_OFFSET_HOURS = (-5, -8, 1, 8)
PLAN_WEIGHTS = (0.4, 0.35, 0.25)
ROLE_WEIGHTS = (0.86, 0.09, 0.03, 0.02)

# Per catalogue entry: relative frequency for students, for staff, and typical duration in ms.
STUDENT_ACTIVITY_WEIGHTS = (20, 7, 38, 12, 8, 0, 0.5, 0, 0, 0, 0, 0, 0, 10)
STAFF_ACTIVITY_WEIGHTS = (18, 6, 22, 0, 0, 9, 7, 3, 1, 2, 4, 0.5, 2.5, 12)
MEDIAN_DURATION_MS = (
    900,
    300,
    60_000,
    420_000,
    20_000,
    4_000,
    1_500,
    800,
    500,
    2_500,
    2_000,
    700,
    9_000,
    600,
)
SCORED_ACTIVITIES = ("complete_lesson", "submit_assignment")
UPPER_CASE_SHARE = 0.02
MIXED_CASE_SHARE = 0.015
UNCATALOGUED_SHARE = 0.002
NULL_SESSION_SHARE = 0.02
NULL_DURATION_SHARE = 0.01

# (device, user agent); students mostly on school Chromebooks and tablets, staff on laptops.
WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2"
DEVICES = (
    ("chromebook", f"Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) {WEBKIT} Chrome/120.0.6099.235 Safari/537.36"),
    ("tablet", f"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) {SAFARI} Mobile/15E148 Safari/604.1"),
    ("laptop", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {WEBKIT} Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0"),
    ("laptop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0"),
    ("phone", f"Mozilla/5.0 (Linux; Android 14; Pixel 7) {WEBKIT} Chrome/121.0.6167.101 Mobile Safari/537.36"),
    ("phone", f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) {SAFARI} Mobile/15E148 Safari/604.1"),
    ("desktop", f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {SAFARI} Safari/605.1.15"),
)
STUDENT_DEVICE_WEIGHTS = (0.45, 0.2, 0.07, 0.03, 0.08, 0.12, 0.05)
STAFF_DEVICE_WEIGHTS = (0.1, 0.05, 0.3, 0.15, 0.05, 0.1, 0.25)
PUBLIC_FIRST_OCTETS = (24, 50, 66, 67, 68, 71, 73, 76, 81, 86, 92, 98, 103, 110, 174, 185, 203)

SCHOOL_NAME_STEMS = (
    "Riverside",
    "Maple Grove",
    "Oak Hill",
    "Lincoln",
    "Washington",
    "Jefferson",
    "Cedar Ridge",
    "Lakeside",
    "Hillcrest",
    "Sunnyvale",
    "Pine Valley",
    "Westbrook",
    "Eastwood",
    "Northfield",
    "Southgate",
    "Brookside",
    "Fairview",
    "Greenwood",
    "Kingsley",
    "Meadowbrook",
    "Springfield",
    "Highland",
    "Valley View",
    "Harbor",
    "Summit",
    "Silver Lake",
    "Stonebridge",
    "Willow Creek",
    "Ashford",
    "Bayside",
)
SCHOOL_NAME_KINDS = (
    "Elementary School",
    "Middle School",
    "High School",
    "Academy",
    "Primary School",
    "Unified School District",
    "Charter School",
    "International School",
)

# Per category: product nouns, median unit cost in dollars, mean units per order line.
CATEGORY_PRODUCTS = {
    "books": (
        ("Reading Anthology", "Math Workbook", "Science Reader", "World Atlas", "Dictionary", "Phonics Set"),
        12.0,
        10.0,
    ),
    "kits": (
        ("Robotics Kit", "Chemistry Kit", "Microscope Set", "Geometry Kit", "Circuit Kit"),
        45.0,
        3.0,
    ),
    "software": (
        ("Math Practice Seat", "Typing Tutor Seat", "Coding Platform Seat", "Reading App Seat"),
        8.0,
        20.0,
    ),
    "stationery": (
        ("Notebook Pack", "Pencil Box", "Marker Set", "Graph Paper Ream", "Glue Sticks"),
        3.0,
        15.0,
    ),
    "art_supplies": (("Watercolor Set", "Sketch Pad", "Clay Pack", "Brush Set"), 6.0, 8.0),
    "electronics": (
        ("Graphing Calculator", "Headset", "Document Camera", "Tablet Case"),
        60.0,
        2.0,
    ),
}
CATEGORY_WEIGHTS = (0.3, 0.15, 0.15, 0.2, 0.1, 0.1)
CATEGORY_LEVELS = (
    "Grade 1",
    "Grade 3",
    "Grade 5",
    "Grade 7",
    "Grade 9",
    "Grade 11",
    "K-2",
    "3-5",
    "6-8",
    "9-12",
)

HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
SALT_EVENT_ID, SALT_REQUEST_ID, SALT_SESSION_ID = 0x1E7, 0x2E9, 0x5E5
