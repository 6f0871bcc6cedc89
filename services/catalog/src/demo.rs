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

/// Products priced in another currency than the euro, each with the price
/// in that currency's minor unit: (id, SKU, name, description, currency,
/// price, stock). An order is in one currency; these are ordered apart.
const IMPORTED: &[(&str, &str, &str, &str, &str, i64, i32)] = &[(
    "prod_tenugui",
    "TENUGUI-KYOTO",
    "Tenugui cloth (Kyoto)",
    "Cotton hand towel for drying cups; sold by our Kyoto partner, priced in yen.",
    "JPY",
    1200,
    20,
)];

/// Adds the demo products if the catalog is empty, each with its own stock
/// or `stock`; returns how many.
pub async fn seed(catalog: &Catalog, stock: Option<i32>) -> Result<usize, CatalogError> {
    if catalog.store().count().await? > 0 {
        return Ok(0);
    }
    let euro = PRODUCTS
        .iter()
        .map(|&(id, sku, name, description, cents, stock)| {
            (id, sku, name, description, "EUR", cents, stock)
        });
    let mut seeded = 0;
    for (id, sku, name, description, currency, price, own_stock) in
        euro.chain(IMPORTED.iter().copied())
    {
        let stock = stock.unwrap_or(own_stock);
        let price = Money::new(currency, price)?;
        let product = NewProduct::new(id, sku, name, description, price, stock)?;
        match catalog.add_product(product).await {
            Ok(_) => seeded += 1,
            // A replica starting beside this one seeded it first.
            Err(CatalogError::DuplicateSku { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use shop_kit::testing::TestDatabase;

    use super::*;

    async fn stock_of(catalog: &Catalog, id: &str) -> i32 {
        catalog
            .store()
            .get(id)
            .await
            .expect("read")
            .expect("seeded")
            .stock_on_hand
    }

    #[tokio::test]
    async fn seeds_each_product_with_its_own_stock_or_the_one_asked_for() {
        let database = TestDatabase::new("catalog").await;
        let catalog = Catalog::open(&database.url).await.expect("open");
        assert_eq!(
            seed(&catalog, None).await.expect("seed"),
            PRODUCTS.len() + IMPORTED.len()
        );
        assert_eq!(stock_of(&catalog, "prod_grinder").await, 8);
        let tenugui = catalog
            .store()
            .get("prod_tenugui")
            .await
            .expect("read")
            .expect("seeded");
        assert_eq!(tenugui.price, Money::new("JPY", 1200).expect("yen"));
        assert_eq!(
            seed(&catalog, Some(5)).await.expect("seed"),
            0,
            "only into an empty catalog"
        );

        let database = TestDatabase::new("catalog").await;
        let catalog = Catalog::open(&database.url).await.expect("open");
        seed(&catalog, Some(1_000_000)).await.expect("seed");
        assert_eq!(stock_of(&catalog, "prod_grinder").await, 1_000_000);
        assert_eq!(stock_of(&catalog, "prod_giftcard").await, 1_000_000);
    }

    /// Replicas started together on an empty catalog seed it together:
    /// each product once, and neither fails to start.
    #[tokio::test]
    async fn replicas_seeding_at_once_seed_each_product_once() {
        let database = TestDatabase::new("catalog").await;
        let first = Catalog::open(&database.url).await.expect("open");
        let second = Catalog::open(&database.url).await.expect("open");
        let (a, b) = tokio::join!(seed(&first, None), seed(&second, None));
        let (a, b) = (a.expect("first seeds"), b.expect("second seeds"));
        assert_eq!(a + b, PRODUCTS.len() + IMPORTED.len(), "{a} + {b}");
        assert_eq!(
            first.store().count().await.expect("count") as usize,
            PRODUCTS.len() + IMPORTED.len()
        );
    }
}
