//! Fuzzes the request parsing and validation layer: any bytes as the body of every endpoint
//! that takes one. Parsing must never panic, and every rejection must render as problem+json
//! that does not echo the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::ApiError;
use shared::dto::{CreateTwilioProvider, ImportNumbers, RotateAuthToken, UpdateTwilioProvider};
use shared::request::JsonFields;

fn check(outcome: Result<(), ApiError>) {
    if let Err(error) = outcome {
        let problem = serde_json::to_value(error.to_problem()).expect("problems serialize");
        assert!(problem["status"].as_u64().is_some_and(|s| (400..500).contains(&s)), "{problem}");
    }
}

fuzz_target!(|data: &[u8]| {
    let parsers: [fn(JsonFields) -> Result<(), ApiError>; 4] = [
        |f| CreateTwilioProvider::from_fields(f).map(drop),
        |f| UpdateTwilioProvider::from_fields(f).map(drop),
        |f| RotateAuthToken::from_fields(f).map(drop),
        |f| ImportNumbers::from_fields(f).map(drop),
    ];
    for parse in parsers {
        check(JsonFields::from_slice(data).and_then(parse));
    }
});
