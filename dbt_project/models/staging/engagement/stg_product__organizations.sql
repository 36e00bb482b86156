with

source as (

    select * from {{ source('product', 'organizations') }}

),

renamed as (

    select
        org_id,
        name as org_name,
        plan,
        region,
        created_at,
        updated_at

    from source

)

select * from renamed
