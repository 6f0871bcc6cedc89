//! Each rule read from a real descriptor set: a test proto compiled by
//! protoc with the kit's options, changed option by option.

use std::time::Duration;

use prost_reflect::DescriptorPool;

use super::*;

/// The descriptors of a test service whose file holds `body` (services
/// and messages) and imports the kit's options.
fn pool(body: &str) -> DescriptorPool {
    let proto = format!(
        "syntax = \"proto3\";\npackage test.v1;\nimport \"kit/policy/v1/policy.proto\";\n\
         message Request {{ string key = 1; int32 count = 2; }}\nmessage Response {{}}\n{body}\n"
    );
    let set = crate::testing::descriptor_set("test.proto", &proto);
    DescriptorPool::decode(set.as_slice()).expect("decodes")
}

fn policy_of(body: &str) -> Result<Policy, PolicyError> {
    let pool = pool(body);
    let method = pool
        .get_service_by_name("test.v1.Test")
        .expect("service")
        .methods()
        .next()
        .expect("a method");
    Policy::required(&method)
}

const RETRY: &str = "retry: { max_attempts: 3 initial_backoff: { nanos: 50000000 } \
     max_backoff: { seconds: 1 } backoff_multiplier: 2 retryable_status_codes: [\"UNAVAILABLE\"] }";

#[test]
fn the_errors_a_method_answers_are_its_own_or_its_services() {
    let inherited = policy_of(
        "service Test { option (kit.policy.v1.service) = { caller: { anyone: true } errors: [\"NOT_FOUND\"] }; rpc Get(Request) returns (Response); }",
    )
    .expect("a good policy");
    assert_eq!(inherited.errors, Some(vec!["NOT_FOUND".to_owned()]));
    let own = policy_of(
        "service Test { option (kit.policy.v1.service) = { caller: { anyone: true } errors: [\"NOT_FOUND\"] }; rpc Get(Request) returns (Response) { option (kit.policy.v1.method) = { errors: [\"ALREADY_EXISTS\", \"ABORTED\"] }; } }",
    )
    .expect("a good policy");
    assert_eq!(
        own.errors,
        Some(vec!["ALREADY_EXISTS".to_owned(), "ABORTED".to_owned()])
    );
}

#[test]
fn a_method_takes_its_services_policy_and_replaces_what_it_gives() {
    let policy = policy_of(
        "service Test {\n\
           option (kit.policy.v1.service) = { caller: { services: { names: [\"orders\"] } } deadline: { seconds: 5 } rate_class: \"internal\" };\n\
           rpc Get(Request) returns (Response) {\n\
             option idempotency_level = NO_SIDE_EFFECTS;\n\
             option (kit.policy.v1.method) = { deadline: { nanos: 300000000 } hedging: { max_attempts: 2 hedging_delay: { nanos: 50000000 } } };\n\
           }\n\
         }",
    )
    .expect("a good policy");
    assert_eq!(
        policy,
        Policy {
            caller: Some(CallerRule::Services(vec!["orders".to_owned()])),
            deadline: Some(Duration::from_millis(300)),
            retry: None,
            hedging: Some(HedgingPolicy {
                max_attempts: 2,
                hedging_delay: Duration::from_millis(50),
                non_fatal_status_codes: vec![],
            }),
            rate_class: Some("internal".to_owned()),
            idempotency_key_field: None,
            shop_secret_field: None,
            errors: None,
        }
    );
}

#[test]
fn every_caller_rule_is_read() {
    for (rule, expected) in [
        ("anyone: true", CallerRule::Anyone),
        ("customer: true", CallerRule::Customer),
        ("signed_in: true", CallerRule::SignedIn),
        (
            "services: { names: [\"orders\", \"gateway\"] }",
            CallerRule::Services(vec!["orders".to_owned(), "gateway".to_owned()]),
        ),
    ] {
        let policy = policy_of(&format!(
            "service Test {{ rpc Get(Request) returns (Response) {{ option (kit.policy.v1.method) = {{ caller: {{ {rule} }} }}; }} }}"
        ))
        .expect(rule);
        assert_eq!(policy.caller, Some(expected), "{rule}");
    }
}

#[test]
fn a_method_without_a_caller_or_with_an_unsafe_retry_is_refused() {
    let cases = [
        (
            "service Test { rpc Put(Request) returns (Response); }",
            "test.v1.Test.Put: no caller policy",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { services: {} } }; } }",
            "names no service",
        ),
        (
            &format!(
                "service Test {{ rpc Put(Request) returns (Response) {{ option (kit.policy.v1.method) = {{ caller: {{ customer: true }} {RETRY} }}; }} }}"
            ),
            "retries are only for a method safe to repeat",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option idempotency_level = IDEMPOTENT; option (kit.policy.v1.method) = { caller: { customer: true } hedging: { max_attempts: 2 } }; } }",
            "hedging is only for reads",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { customer: true } idempotency_key_field: \"count\" }; } }",
            "idempotency_key_field \"count\" is no string field of test.v1.Request",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { shop_secret: true } }; } }",
            "name the request's field that carries it with shop_secret_field",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { shop_secret: true } shop_secret_field: \"count\" }; } }",
            "shop_secret_field \"count\" is no string field of test.v1.Request",
        ),
        (
            "service Test { rpc Put(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { customer: true } shop_secret_field: \"key\" }; } }",
            "shop_secret_field is only for a method whose caller is `shop_secret`",
        ),
        (
            "service Test { rpc Get(Request) returns (Response) { option idempotency_level = NO_SIDE_EFFECTS; option (kit.policy.v1.method) = { caller: { anyone: true } hedging: { max_attempts: 9 } }; } }",
            "hedging.max_attempts is 9: it must be 2 to 5",
        ),
        (
            "service Test { rpc Get(Request) returns (Response) { option idempotency_level = NO_SIDE_EFFECTS; option (kit.policy.v1.method) = { caller: { anyone: true } retry: { max_attempts: 2 initial_backoff: { nanos: 1 } max_backoff: { seconds: 1 } backoff_multiplier: 2 retryable_status_codes: [\"unavailable\"] } }; } }",
            "\"unavailable\" is no gRPC status code name",
        ),
        (
            "service Test { rpc Get(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { anyone: true } deadline: {} }; } }",
            "deadline must be more than zero",
        ),
        (
            "service Test { rpc Get(Request) returns (Response) { option (kit.policy.v1.method) = { caller: { anyone: true } errors: [\"NOT_FOUND\", \"missing\"] }; } }",
            "\"missing\" is no gRPC status code name",
        ),
    ];
    for (body, message) in cases {
        let error = policy_of(body).expect_err(body).to_string();
        assert!(error.contains(message), "{body}: {error}");
    }
}

#[test]
fn a_retry_is_allowed_where_repeating_is_safe() {
    for safety in [
        "option idempotency_level = IDEMPOTENT;",
        "option idempotency_level = NO_SIDE_EFFECTS;",
    ] {
        let policy = policy_of(&format!(
            "service Test {{ rpc Put(Request) returns (Response) {{ {safety} option (kit.policy.v1.method) = {{ caller: {{ customer: true }} {RETRY} }}; }} }}"
        ))
        .expect(safety);
        assert_eq!(policy.retry.map(|r| r.max_attempts), Some(3));
    }
    let keyed = policy_of(&format!(
        "service Test {{ rpc Put(Request) returns (Response) {{ option (kit.policy.v1.method) = {{ caller: {{ customer: true }} idempotency_key_field: \"key\" {RETRY} }}; }} }}"
    ))
    .expect("keyed");
    assert_eq!(
        keyed
            .retry
            .map(|r| (r.initial_backoff, r.retryable_status_codes)),
        Some((Duration::from_millis(50), vec!["UNAVAILABLE".to_owned()]))
    );
}

#[test]
fn the_table_says_each_methods_policy_in_words() {
    let pool = pool(&format!(
        "service Test {{\n\
           option (kit.policy.v1.service) = {{ caller: {{ customer: true }} deadline: {{ seconds: 10 }} }};\n\
           rpc Put(Request) returns (Response) {{ option (kit.policy.v1.method) = {{ idempotency_key_field: \"key\" {RETRY} }}; }}\n\
           rpc Get(Request) returns (Response) {{ option idempotency_level = NO_SIDE_EFFECTS; option (kit.policy.v1.method) = {{ caller: {{ anyone: true }} deadline: {{ nanos: 500000000 }} hedging: {{ max_attempts: 2 hedging_delay: {{ nanos: 20000000 }} }} rate_class: \"public\" }}; }}\n\
         }}"
    ));
    let table = table(&pool, |package| package == "test.v1").expect("table");
    assert_eq!(
        table,
        "| method | caller | deadline | retries | hedging | rate class |\n\
         |---|---|---|---|---|---|\n\
         | `test.v1.Test.Put` | a signed-in customer | 10 s | 3 attempts on UNAVAILABLE; backoff 50 ms ×2 up to 1 s, by `key` | — | — |\n\
         | `test.v1.Test.Get` | anyone | 500 ms | — | 2 copies, 20 ms apart | public |\n"
    );
}

/// A service with a read, a keyed write and a plain write, for the
/// service config's tests.
const SHOP: &str = "service Test {\n\
       option (kit.policy.v1.service) = { caller: { anyone: true } deadline: { seconds: 5 } };\n\
       rpc Get(Request) returns (Response) {\n\
         option idempotency_level = NO_SIDE_EFFECTS;\n\
         option (kit.policy.v1.method) = { hedging: { max_attempts: 2 hedging_delay: { nanos: 50000000 } } };\n\
       }\n\
       rpc Put(Request) returns (Response) {\n\
         option (kit.policy.v1.method) = { idempotency_key_field: \"key\" };\n\
       }\n\
       rpc Post(Request) returns (Response);\n\
     }";

fn method(pool: &DescriptorPool, name: &str) -> prost_reflect::MethodDescriptor {
    pool.get_service_by_name("test.v1.Test")
        .expect("service")
        .methods()
        .find(|m| m.name() == name)
        .expect("method")
}

const CONFIG_RETRY: &str = r#""retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s",
    "maxBackoff": "2s", "backoffMultiplier": 1.5, "retryableStatusCodes": ["unavailable", 8]}"#;

#[test]
fn a_service_config_entry_replaces_the_contract_s_calls_most_specific_first() {
    let pool = pool(SHOP);
    let config = ServiceConfig::parse(
        &format!(
            r#"{{"methodConfig": [
                {{"name": [{{}}], "timeout": "1s"}},
                {{"name": [{{"service": "test.v1.Test", "method": "Put"}}], "timeout": "0.250s", {CONFIG_RETRY}}}
            ]}}"#
        ),
        &pool,
    )
    .expect("a good config");
    let put = config.policy_of(&method(&pool, "Put")).expect("put");
    assert_eq!(put.deadline, Some(Duration::from_millis(250)));
    let retry = put.retry.expect("the config's retry");
    assert_eq!(retry.max_attempts, 5, "gRPC caps attempts at 5");
    assert_eq!(retry.backoff_multiplier, 1.5);
    assert_eq!(
        retry.retryable_status_codes,
        ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
    );
    assert_eq!(put.caller, Some(CallerRule::Anyone), "who may call stays");
    // The entry for every method replaces Get's hedging: the matched
    // entry is the whole of the method's config, as in gRPC.
    let get = config.policy_of(&method(&pool, "Get")).expect("get");
    assert_eq!(get.deadline, Some(Duration::from_secs(1)));
    assert_eq!(get.hedging, None);
}

#[test]
fn a_service_config_that_does_not_hold_is_refused_saying_where() {
    let pool = pool(SHOP);
    let refused = |json: &str| {
        ServiceConfig::parse(json, &pool)
            .expect_err(json)
            .to_string()
    };
    let retry_all = format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "test.v1.Test"}}], {CONFIG_RETRY}}}]}}"#
    );
    assert!(
        refused(&retry_all)
            .contains("test.v1.Test.Post: retries are only for a method safe to repeat"),
        "{}",
        refused(&retry_all)
    );
    for (json, says) in [
        ("{", "not a gRPC service config"),
        (
            r#"{"methodConfig": [{"name": [{"service": "test.v1.Nope"}]}]}"#,
            "test.v1.Nope, which the contract does not have",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "test.v1.Test", "method": "Nope"}]}]}"#,
            "test.v1.Test.Nope, which the contract does not have",
        ),
        (
            r#"{"methodConfig": [{"name": [{}]}, {"name": [{}]}]}"#,
            "methodConfig[1] names every method ({}), which methodConfig[0] names already",
        ),
        (
            r#"{"methodConfig": [{"name": [{}], "timeout": "soon"}]}"#,
            "timeout: \"soon\" is no duration",
        ),
        (
            r#"{"methodConfig": [{"name": [{}], "waitForReady": true}]}"#,
            "unknown field `waitForReady`",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "test.v1.Test", "method": "Get"}], "hedgingPolicy": {"maxAttempts": 1}}]}"#,
            "hedgingPolicy.maxAttempts is 1",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "test.v1.Test", "method": "Post"}], "hedgingPolicy": {"maxAttempts": 2}}]}"#,
            "hedging is only for reads",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "test.v1.Test", "method": "Put"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["NOPE"]}}]}"#,
            "\"NOPE\" is no gRPC status code name",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}"#,
            "retryThrottling: maxTokens is 0",
        ),
    ] {
        let error = refused(json);
        assert!(error.contains(says), "{json}: {error}");
    }
}

#[test]
fn durations_are_read_as_protobuf_json_writes_them() {
    use service_config::duration;
    assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    assert_eq!(duration("20s"), Ok(Duration::from_secs(20)));
    for wrong in ["1.5", "s", "-1s", "1.5ms", "1.0000000001s", ".5s"] {
        assert!(duration(wrong).is_err(), "{wrong}");
    }
}

#[test]
fn the_contract_written_as_a_service_config_reads_back_as_the_contract() {
    let pool = pool(SHOP);
    let json = service_config_of(&pool, |_| true).expect("written");
    let config = ServiceConfig::parse(&json, &pool).expect("a service config gRPC takes");
    for name in ["Get", "Put", "Post"] {
        let method = method(&pool, name);
        assert_eq!(
            config.policy_of(&method).expect("as configured"),
            Policy::of(&method).expect("as declared"),
            "{name}\n{json}"
        );
    }
    assert!(json.contains(r#""hedgingDelay": "0.05s""#), "{json}");
}
