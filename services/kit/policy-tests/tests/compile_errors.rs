//! The mistakes a service author makes with the generated builders do not
//! compile, and the compiler says what to write instead: each case under
//! `compile_errors/` with the message it gets (its `.stderr`, checked).
//! `TRYBUILD=overwrite cargo test -p shop-kit-policy-tests --test
//! compile_errors` writes them anew after a deliberate change of wording.

#[test]
fn mistakes_do_not_compile_and_say_what_to_write() {
    trybuild::TestCases::new().compile_fail("tests/compile_errors/*.rs");
}
