-- Plain bulk load, DuckDB: the landing files into raw.* with DuckDB's own readers, in one script.
-- No per-record reasons, no reject table, no file ledger: only what `dbt build` and the floor marts
-- need (typed values, required fields present, one row per key, the record's date = the folder's
-- date). {name_files} are SQL lists of paths filled in by bench/tasks.py; raw.* exist already (the
-- pipeline's own DDL).

insert into raw.activity_events by name
with events as (
    select
        event_id,
        cast(try_cast(occurred_at as timestamptz) as timestamp) as occurred_at,
        user_id,
        org_id,
        lower(activity_type) as activity_type,
        session_id,
        request_id,
        ip_address,
        user_agent,
        try_cast(duration_ms as bigint) as duration_ms,
        properties,
        cast(regexp_extract(filename, 'date=([0-9-]{10})', 1) as date) as _partition_date,
        filename as _source_file
    from read_json(
        {activity_events_files}, format = 'newline_delimited', ignore_errors = true, filename = true,
        columns = {
            event_id: 'varchar', occurred_at: 'varchar', user_id: 'varchar', org_id: 'varchar',
            activity_type: 'varchar', session_id: 'varchar', request_id: 'varchar',
            ip_address: 'varchar', user_agent: 'varchar', duration_ms: 'varchar', properties: 'varchar'
        }
    )
)
select *, cast(now() as timestamp) as _loaded_at
from events
where event_id is not null and user_id is not null and org_id is not null and activity_type is not null
  and cast(occurred_at as date) = _partition_date
qualify row_number() over (partition by event_id order by _source_file) = 1;

insert into raw.order_lines by name
with lines as (
    select
        order_id,
        try_cast(line_no as bigint) as line_no,
        cast(try_cast(ordered_at as timestamptz) as timestamp) as ordered_at,
        org_id,
        user_id,
        item_id,
        try_cast(quantity as bigint) as quantity,
        try_cast(unit_price as decimal(18, 4)) as unit_price,
        try_cast(unit_cost as decimal(18, 4)) as unit_cost,
        coalesce(currency, 'USD') as currency,
        lower(status) as status,
        cast(regexp_extract(filename, 'date=([0-9-]{10})', 1) as date) as _partition_date,
        filename as _source_file
    from read_csv({order_lines_files}, header = true, all_varchar = true, filename = true, ignore_errors = true)
)
select *, cast(now() as timestamp) as _loaded_at
from lines
where order_id is not null and org_id is not null and item_id is not null and line_no >= 1
  and quantity >= 1 and unit_price >= 0 and unit_cost >= 0
  and status in ('completed', 'refunded', 'cancelled')
  and cast(ordered_at as date) = _partition_date
qualify row_number() over (partition by order_id, line_no order by _source_file) = 1;

insert into raw.inventory_snapshots by name
with snapshots as (
    select
        try_cast(snapshot_date as date) as snapshot_date,
        item_id,
        try_cast(on_hand as bigint) as on_hand,
        try_cast(on_order as bigint) as on_order,
        try_cast(reorder_point as bigint) as reorder_point,
        cast(regexp_extract(filename, 'date=([0-9-]{10})', 1) as date) as _partition_date,
        filename as _source_file
    from read_csv({inventory_snapshots_files}, header = true, all_varchar = true, filename = true, ignore_errors = true)
)
select *, cast(now() as timestamp) as _loaded_at
from snapshots
where item_id is not null and on_hand >= 0 and snapshot_date = _partition_date
qualify row_number() over (partition by snapshot_date, item_id order by _source_file) = 1;

insert into raw.organizations by name
select
    org_id, name, lower(plan) as plan, lower(region) as region,
    cast(try_cast(created_at as timestamptz) as timestamp) as created_at,
    cast(try_cast(updated_at as timestamptz) as timestamp) as updated_at,
    filename as _source_file, cast(now() as timestamp) as _loaded_at
from read_json(
    {organizations_files}, format = 'newline_delimited', ignore_errors = true, filename = true,
    columns = {org_id: 'varchar', name: 'varchar', plan: 'varchar', region: 'varchar',
               created_at: 'varchar', updated_at: 'varchar'}
)
where org_id is not null
qualify row_number() over (partition by org_id order by updated_at desc, filename desc) = 1;

insert into raw.users by name
select
    user_id, org_id, lower(role) as role,
    cast(try_cast(created_at as timestamptz) as timestamp) as created_at,
    cast(try_cast(updated_at as timestamptz) as timestamp) as updated_at,
    filename as _source_file, cast(now() as timestamp) as _loaded_at
from read_csv({users_files}, header = true, all_varchar = true, filename = true, ignore_errors = true)
where user_id is not null and org_id is not null
qualify row_number() over (partition by user_id order by updated_at desc, filename desc) = 1;

insert into raw.items by name
select
    item_id, name, lower(category) as category,
    cast(unit_cost as decimal(18, 4)) as unit_cost, cast(list_price as decimal(18, 4)) as list_price,
    coalesce(active, true) as active, cast(updated_at as timestamp) as updated_at,
    filename as _source_file, cast(now() as timestamp) as _loaded_at
from read_parquet({items_files}, filename = true)
where item_id is not null
qualify row_number() over (partition by item_id order by updated_at desc, filename desc) = 1;
