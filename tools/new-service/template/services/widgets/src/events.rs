//! What widgets publishes: `widget.created`, written to the outbox in the
//! transaction that records the widget, and read back by the live feed.

use serde::{Deserialize, Serialize};
use shop_kit::events::Event;

use crate::domain::Widget;

/// Widgets' name on events, in its tables and in logs.
pub const SERVICE: &str = "widgets";

/// The type of every widget event starts with this.
pub const WIDGET_EVENTS: &str = "widget.";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WidgetFacts {
    widget_id: String,
    customer_id: String,
    title: String,
    description: String,
    product_id: String,
    created_at_ms: i64,
}

/// The event for `widget` having been created.
pub fn created(widget: &Widget) -> Event {
    let facts = WidgetFacts {
        widget_id: widget.id.clone(),
        customer_id: widget.customer_id.clone(),
        title: widget.title.clone(),
        description: widget.description.clone(),
        product_id: widget.product_id.clone(),
        created_at_ms: widget.created_at_ms,
    };
    Event::new(
        SERVICE,
        "widget.created",
        &widget.id,
        1,
        serde_json::json!(facts),
    )
}

/// The widget an event tells of.
pub fn widget_of(event: &Event) -> Result<Widget, String> {
    let facts: WidgetFacts =
        serde_json::from_value(event.data.clone()).map_err(|e| e.to_string())?;
    Ok(Widget {
        id: facts.widget_id,
        customer_id: facts.customer_id,
        title: facts.title,
        description: facts.description,
        product_id: facts.product_id,
        created_at_ms: facts.created_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_event_tells_the_widget_it_was_made_for() {
        let widget = Widget {
            id: "w-1".to_owned(),
            customer_id: "ada".to_owned(),
            title: "A widget".to_owned(),
            description: String::new(),
            product_id: "prod_espresso".to_owned(),
            created_at_ms: 1,
        };
        let event = created(&widget);
        assert_eq!(event.event_type, "widget.created");
        assert_eq!(widget_of(&event), Ok(widget));
    }
}
