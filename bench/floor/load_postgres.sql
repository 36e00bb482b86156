-- Plain bulk load, PostgreSQL: the landing files are streamed with COPY (bench/tasks.py) into the
-- staging tables below, then typed into raw.* (the pipeline's own DDL) by plain SQL. No per-record
-- reasons, no reject table, no file ledger: only what `dbt build` and the floor marts need (typed
-- values, required fields present, one row per key, the record's date = the folder's date).
-- PostgreSQL has no try_cast, so values are screened with cheap string tests before the cast; the
-- screens accept what `analytics-pipeline generate` writes (UTC timestamps with Z).

create temp table _event_lines (line text, _source_file text);
create temp table _order_rows (
    order_id text, line_no text, ordered_at text, org_id text, user_id text, item_id text,
    quantity text, unit_price text, unit_cost text, currency text, status text, _source_file text
);
create temp table _inventory_rows (
    snapshot_date text, item_id text, on_hand text, on_order text, reorder_point text, _source_file text
);
create temp table _organization_lines (line text, _source_file text);
create temp table _user_rows (
    user_id text, org_id text, role text, created_at text, updated_at text, _source_file text
);
create temp table _item_rows (
    item_id text, name text, category text, unit_cost text, list_price text, active text,
    updated_at text, _source_file text
);

-- @copy: bench/tasks.py streams every landing file into its staging table here

insert into raw.activity_events (
    event_id, occurred_at, user_id, org_id, activity_type, session_id, request_id, ip_address,
    user_agent, duration_ms, properties, _partition_date, _source_file, _loaded_at
)
-- materialized: otherwise the planner inlines the CTE and parses every line once per ->> (~20x slower)
with parsed as materialized (
    select line::jsonb as record, _source_file,
           cast(substring(_source_file from 'date=([0-9-]{10})') as date) as _partition_date
    from _event_lines
    where line like '{%}'
      and length(line) - length(replace(line, '{', '')) = length(line) - length(replace(line, '}', ''))
),
events as (
    select
        record ->> 'event_id' as event_id,
        record ->> 'occurred_at' as occurred_text,
        record ->> 'user_id' as user_id,
        record ->> 'org_id' as org_id,
        lower(record ->> 'activity_type') as activity_type,
        record ->> 'session_id' as session_id,
        record ->> 'request_id' as request_id,
        record ->> 'ip_address' as ip_address,
        record ->> 'user_agent' as user_agent,
        record ->> 'duration_ms' as duration_text,
        record -> 'properties' as properties,
        _partition_date,
        _source_file
    from parsed
),
valid as (
    select distinct on (event_id) *
    from events
    where event_id is not null and user_id is not null and org_id is not null and activity_type is not null
      and left(occurred_text, 10) = cast(_partition_date as text)
      and substring(occurred_text from 11) ~ '^[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?Z$'
    order by event_id, _source_file
)
select
    event_id, cast(occurred_text as timestamptz) at time zone 'UTC', user_id, org_id, activity_type,
    session_id, request_id, ip_address, user_agent,
    case when duration_text ~ '^[0-9]{1,18}$' then cast(duration_text as bigint) end,
    cast(properties as text), _partition_date, _source_file, localtimestamp
from valid;

insert into raw.order_lines (
    order_id, line_no, ordered_at, org_id, user_id, item_id, quantity, unit_price, unit_cost,
    currency, status, _partition_date, _source_file, _loaded_at
)
with lines as (
    select *, cast(substring(_source_file from 'date=([0-9-]{10})') as date) as _partition_date
    from _order_rows
),
valid as (
    select distinct on (order_id, line_no) *
    from lines
    where order_id is not null and org_id is not null and item_id is not null
      and line_no ~ '^[0-9]{1,9}$' and quantity ~ '^[0-9]{1,9}$'
      and unit_price ~ '^[0-9]+(\.[0-9]+)?$' and unit_cost ~ '^[0-9]+(\.[0-9]+)?$'
      and lower(status) in ('completed', 'refunded', 'cancelled')
      and left(ordered_at, 10) = cast(_partition_date as text)
      and substring(ordered_at from 11) ~ '^[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?Z$'
    order by order_id, line_no, _source_file
)
select
    order_id, cast(line_no as bigint), cast(ordered_at as timestamptz) at time zone 'UTC', org_id,
    user_id, item_id, cast(quantity as bigint), cast(unit_price as numeric(18, 4)),
    cast(unit_cost as numeric(18, 4)), coalesce(currency, 'USD'), lower(status), _partition_date,
    _source_file, localtimestamp
from valid
where cast(line_no as bigint) >= 1 and cast(quantity as bigint) >= 1;

insert into raw.inventory_snapshots (
    snapshot_date, item_id, on_hand, on_order, reorder_point, _partition_date, _source_file, _loaded_at
)
with rows as (
    select *, cast(substring(_source_file from 'date=([0-9-]{10})') as date) as _partition_date
    from _inventory_rows
)
select distinct on (snapshot_date, item_id)
    cast(snapshot_date as date), item_id, cast(on_hand as bigint),
    case when on_order ~ '^[0-9]{1,18}$' then cast(on_order as bigint) end,
    case when reorder_point ~ '^[0-9]{1,18}$' then cast(reorder_point as bigint) end,
    _partition_date, _source_file, localtimestamp
from rows
where item_id is not null and on_hand ~ '^[0-9]{1,18}$' and snapshot_date = cast(_partition_date as text)
order by snapshot_date, item_id, _source_file;

insert into raw.organizations (org_id, name, plan, region, created_at, updated_at, _source_file, _loaded_at)
select distinct on (record ->> 'org_id')
    record ->> 'org_id', record ->> 'name', lower(record ->> 'plan'), lower(record ->> 'region'),
    cast(record ->> 'created_at' as timestamptz) at time zone 'UTC',
    cast(record ->> 'updated_at' as timestamptz) at time zone 'UTC', _source_file, localtimestamp
from (select cast(line as jsonb) as record, _source_file from _organization_lines where line like '{%}') as orgs
where record ->> 'org_id' is not null
order by record ->> 'org_id', record ->> 'updated_at' desc, _source_file desc;

insert into raw.users (user_id, org_id, role, created_at, updated_at, _source_file, _loaded_at)
select distinct on (user_id)
    user_id, org_id, lower(role), cast(created_at as timestamptz) at time zone 'UTC',
    cast(updated_at as timestamptz) at time zone 'UTC', _source_file, localtimestamp
from _user_rows
where user_id is not null and org_id is not null
order by user_id, updated_at desc, _source_file desc;

insert into raw.items (item_id, name, category, unit_cost, list_price, active, updated_at, _source_file, _loaded_at)
select distinct on (item_id)
    item_id, name, lower(category), cast(unit_cost as numeric(18, 4)), cast(list_price as numeric(18, 4)),
    coalesce(cast(active as boolean), true), cast(updated_at as timestamptz) at time zone 'UTC',
    _source_file, localtimestamp
from _item_rows
where item_id is not null
order by item_id, updated_at desc, _source_file desc;
