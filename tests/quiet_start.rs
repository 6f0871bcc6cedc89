//! What a newcomer sees of a normal start: before the shop serves, one line
//! per service (its migrations, summarised), nothing at warn or error, and
//! durations to the microsecond; and boolean variables that take `1` and `0`
//! as well as `true` and `false` (`SHOP_LOG_RPCS=1`, as docs/observing.md
//! writes it, stopped the shop at start).

mod launched;

use launched::Shop;
use serde_json::json;

/// One successful call to users, then the shop stopped: its whole log.
async fn log_of_a_start(env: &[(&str, &str)]) -> String {
    let shop = Shop::whole_logged(&[], env).await;
    let path = format!(
        "{}/shop.users.v1.UserService/GetPublicKeys",
        shop.url("users")
    );
    let (status, body) = shop_kit::testing::call_json(&path, None, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    shop.stop_for_log()
}

fn successful_call_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("rpc finished") && line.contains("code=\"ok\""))
        .collect()
}

#[tokio::test]
async fn a_normal_start_says_one_line_per_service_and_nothing_alarming() {
    let log = log_of_a_start(&[("SHOP_LOG_RPCS", "1")]).await;
    // What the default level shows before the first call (SHOP_LOG_RPCS
    // adds its calls at debug).
    let started: Vec<&str> = log
        .lines()
        .take_while(|line| !line.contains("GetPublicKeys"))
        .filter(|line| !line.contains(" DEBUG "))
        .collect();
    for alarming in [" WARN ", " ERROR ", "panicked"] {
        assert!(
            !started.iter().any(|line| line.contains(alarming)),
            "{alarming:?} in a normal start:\n{log}"
        );
    }
    let migrations: Vec<&&str> = started
        .iter()
        .filter(|line| line.contains("migration"))
        .collect();
    // Every service but the gateway keeps a database.
    assert_eq!(
        migrations.len(),
        shop_proto::identity::SERVICES.len() - 1,
        "one line per service's migrations:\n{log}"
    );
    assert!(
        started.len() <= 5,
        "at most one line per service before serving:\n{log}"
    );

    // SHOP_LOG_RPCS=1 is on: the successful call has its line, its duration
    // to the microsecond at most.
    let calls = successful_call_lines(&log);
    assert!(!calls.is_empty(), "SHOP_LOG_RPCS=1 logs every call:\n{log}");
    for line in calls {
        let duration = line
            .split("duration_ms=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("a duration in {line}"));
        let decimals = duration.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{duration} ms in {line}");
    }
}

#[tokio::test]
async fn boolean_variables_take_zero_for_false() {
    let log = log_of_a_start(&[("SHOP_LOG_RPCS", "0"), ("SHOP_NO_DEMO_DATA", "0")]).await;
    assert!(
        successful_call_lines(&log).is_empty(),
        "SHOP_LOG_RPCS=0 logs no successful call:\n{log}"
    );
}
