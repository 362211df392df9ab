//! The GGUF tokenizer against llama.cpp's on the real SmolLM2 file: identical token ids on a
//! few KiB of mixed text (English, code, digits, whitespace runs, emoji, CJK, other scripts),
//! and decoding gives the text back.
//!
//! The reference is `tokenize.json` in the refs folder, written by `scripts/refs/tokenize.py`
//! (llama-cpp-python, `vocab_only=True`). Missing model or reference: a failure under
//! `FASTLIBRA_REQUIRE_MODEL=1`, a skip line otherwise.

mod tokenizer_support;

use fastlibra_kernels::checkpoint::GgufFile;
use fastlibra_kernels::tokenizer::Tokenizer;
use serde_json::Value;
use tokenizer_support::{file_or_skip, mixed_text, model_dir, refs_dir, smollm2};

const REFERENCE: &str = "tokenize.json";
const HOW: &str = "run scripts/py-env.sh, then scripts/refs/all.sh";

fn reference(test: &str) -> Option<Value> {
    let path = file_or_skip(test, &refs_dir().join(REFERENCE), HOW)?;
    let text = std::fs::read_to_string(&path).expect("read the reference");
    Some(serde_json::from_str(&text).expect("the reference is JSON"))
}

fn ids_of(case: &Value) -> Vec<u32> {
    case["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| u32::try_from(v.as_u64().expect("an id")).expect("a u32 id"))
        .collect()
}

#[test]
fn token_ids_equal_llama_cpp_on_mixed_text() {
    let test = "token_ids_equal_llama_cpp_on_mixed_text";
    let Some(tok) = smollm2(test) else { return };
    let Some(reference) = reference(test) else {
        return;
    };
    let cases = reference["cases"].as_array().expect("cases");
    assert!(
        cases.len() > 50,
        "the reference has every line of the fixture"
    );
    let whole = cases
        .iter()
        .find(|c| c["name"] == "mixed")
        .expect("the whole-fixture case");
    assert_eq!(
        whole["text"].as_str(),
        Some(mixed_text().as_str()),
        "the reference is of this fixture"
    );
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let text = case["text"].as_str().expect("text");
        let want = ids_of(case);
        let got = tok.encode(text, true).expect("encode");
        compared += want.len();
        if got != want {
            let at = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            mismatches.push(format!(
                "{name}: first difference at {at}: ours {:?}, llama.cpp {:?}",
                &got[at..(at + 5).min(got.len())],
                &want[at..(at + 5).min(want.len())]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    assert!(compared > 1000, "compared {compared} ids");
    eprintln!(
        "{test}: {} cases, {compared} ids identical to llama.cpp's",
        cases.len()
    );
}

#[test]
fn decoding_llama_cpp_ids_gives_the_text_back() {
    let test = "decoding_llama_cpp_ids_gives_the_text_back";
    let Some(tok) = smollm2(test) else { return };
    let Some(reference) = reference(test) else {
        return;
    };
    for case in reference["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let text = case["text"].as_str().expect("text");
        let ids = ids_of(case);
        assert_eq!(
            tok.decode(&ids, false).expect("decode"),
            text,
            "{name}: decode"
        );
        assert_eq!(
            case["detokenized"].as_str(),
            Some(text),
            "{name}: llama.cpp's own round trip"
        );
    }
}

#[test]
fn the_f32_export_has_the_same_tokenizer() {
    let test = "the_f32_export_has_the_same_tokenizer";
    let Some(tok) = smollm2(test) else { return };
    let path = model_dir().join("SmolLM2-135M-Instruct.F32.gguf");
    if !path.is_file() {
        eprintln!(
            "skip {test}: {} is missing (scripts/refs/make_f32_gguf.py writes it)",
            path.display()
        );
        return;
    }
    let f32_tok = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open")).expect("tokenizer");
    let text = mixed_text();
    assert_eq!(
        f32_tok.encode(&text, true).unwrap(),
        tok.encode(&text, true).unwrap()
    );
    assert_eq!(f32_tok.vocab_size(), tok.vocab_size());
}
