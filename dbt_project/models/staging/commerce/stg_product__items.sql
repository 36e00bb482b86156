with

source as (

    select * from {{ source('product', 'items') }}

),

renamed as (

    select
        item_id,
        name as item_name,
        category,
        unit_cost,
        list_price,
        active as is_active,
        updated_at

    from source

)

select * from renamed
