//! Demo products seeded into an empty catalog, so a fresh shop has
//! something to sell.

use crate::{
    Catalog,
    domain::{Money, NewProduct},
    error::CatalogError,
};

/// (id, SKU, name, description, price in euro cents, stock)
const PRODUCTS: &[(&str, &str, &str, &str, i64, i32)] = &[
    (
        "prod_espresso",
        "BEAN-ESP-250",
        "Espresso beans 250 g",
        "Dark roast, notes of cocoa and hazelnut.",
        1290,
        40,
    ),
    (
        "prod_filter",
        "BEAN-FLT-250",
        "Filter beans 250 g",
        "Light roast from Ethiopia, bright and floral.",
        1190,
        35,
    ),
    (
        "prod_decaf",
        "BEAN-DEC-250",
        "Decaf beans 250 g",
        "Swiss-water decaf, smooth and sweet.",
        1250,
        20,
    ),
    (
        "prod_grinder",
        "GRND-HAND-01",
        "Hand grinder",
        "Conical steel burrs, 40 click settings.",
        8900,
        8,
    ),
    (
        "prod_kettle",
        "KTL-GOOSE-01",
        "Gooseneck kettle",
        "0.9 l, precise pour for filter coffee.",
        5400,
        12,
    ),
    (
        "prod_dripper",
        "DRIP-CER-02",
        "Ceramic dripper",
        "Size 02, fits most paper filters.",
        2400,
        25,
    ),
    (
        "prod_filters",
        "FILT-02-100",
        "Paper filters (100)",
        "Unbleached size 02 filters.",
        590,
        100,
    ),
    (
        "prod_mug",
        "MUG-STONE-01",
        "Stoneware mug",
        "Hand-glazed, 300 ml.",
        1800,
        30,
    ),
    (
        "prod_scale",
        "SCALE-01",
        "Coffee scale",
        "0.1 g resolution with a built-in timer.",
        3900,
        10,
    ),
    (
        "prod_tamper",
        "TAMP-58",
        "Tamper 58 mm",
        "Stainless steel, walnut handle.",
        3500,
        6,
    ),
    (
        "prod_milk_jug",
        "JUG-MILK-35",
        "Milk jug 350 ml",
        "For latte art.",
        1600,
        15,
    ),
    (
        "prod_giftcard",
        "GIFT-25",
        "Gift card 25 EUR",
        "Delivered by email.",
        2500,
        1000,
    ),
];

/// Adds the demo products if the catalog is empty, each with its own stock
/// or `stock`; returns how many.
pub async fn seed(catalog: &Catalog, stock: Option<i32>) -> Result<usize, CatalogError> {
    if catalog.store().count().await? > 0 {
        return Ok(0);
    }
    for &(id, sku, name, description, cents, own_stock) in PRODUCTS {
        let stock = stock.unwrap_or(own_stock);
        let product =
            NewProduct::new(id, sku, name, description, Money::new("EUR", cents)?, stock)?;
        catalog.add_product(product).await?;
    }
    Ok(PRODUCTS.len())
}
