with

source as (

    select * from {{ source('product', 'users') }}

),

renamed as (

    select
        user_id,
        org_id,
        role,
        created_at,
        updated_at

    from source

)

select * from renamed
