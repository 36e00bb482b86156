with

source as (

    select * from {{ source('product', 'activity_events') }}

),

renamed as (

    select
        event_id,
        occurred_at,
        _partition_date as activity_date,
        {{ dbt.date_trunc('hour', 'occurred_at') }} as activity_hour,
        user_id,
        org_id,
        activity_type,
        -- the catalogue is the project variable activity_catalogue (dbt_project.yml)
        activity_type in ('{{ var("activity_catalogue") | join("', '") }}') as is_catalogued_activity,
        session_id,
        request_id,
        ip_address,
        user_agent,
        duration_ms,
        properties,
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed
