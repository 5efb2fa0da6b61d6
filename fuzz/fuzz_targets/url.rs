//! Any URL and any parameter name and value: parsing never panics, and an accepted URL names
//! an absolute directory.
#![no_main]

use flatstore::{Config, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, String, String)| {
    let (url, name, value) = input;
    let mut params = Params::default();
    let before = params.clone();
    if params.set(&name, &value).is_err() {
        assert_eq!(params, before, "a refused parameter changes nothing");
    }
    if let Ok(config) = Config::from_url(&url, &params) {
        assert!(config.dir().is_absolute(), "{url:?} gave {:?}", config.dir());
    }
});
