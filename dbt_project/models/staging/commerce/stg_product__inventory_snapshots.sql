with

source as (

    select * from {{ source('product', 'inventory_snapshots') }}

),

renamed as (

    select
        snapshot_date,
        item_id,
        on_hand,
        on_order,
        reorder_point,
        on_hand = 0 as is_stockout,
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed
