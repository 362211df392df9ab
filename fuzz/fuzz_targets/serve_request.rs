//! The HTTP front's request parser and validation on arbitrary bytes: the first byte picks
//! the endpoint (completions, chat, load, unload), the rest is the body. Refusals must be 4xx
//! with an OpenAI-style body; accepted requests must fit the context and the vocabulary (see
//! `fastlibra_serve::fuzz_entry`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fastlibra_serve::fuzz_entry::request(data);
});
