with

source as (

    select * from {{ source('product', 'order_lines') }}

),

renamed as (

    select
        order_id,
        line_no,
        ordered_at,
        _partition_date as order_date,
        org_id,
        user_id,
        item_id,
        quantity,
        unit_price,
        unit_cost,
        currency,
        status,
        quantity * unit_price as line_amount,
        quantity * unit_cost as line_cost,
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed
