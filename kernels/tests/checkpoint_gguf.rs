//! The GGUF container: every value type round-trips, and truncated or corrupt bytes are clear
//! errors naming the field, never a panic.

mod checkpoint_support;

use checkpoint_support::{TempDir, tiny_config, tiny_gguf, tiny_tensors};
use fastlibra_kernels::checkpoint::CheckpointError;
use fastlibra_kernels::checkpoint::gguf::write::{TensorToWrite, to_bytes};
use fastlibra_kernels::checkpoint::gguf::{GgmlType, GgufFile, GgufValue, parse};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn every_type() -> Vec<(String, GgufValue)> {
    use GgufValue::*;
    let strings = Array((0..5).map(|i| String(format!("tok{i} ✓"))).collect());
    let nested = Array(vec![Array(vec![I16(-1), I16(2)]), Array(vec![I16(3)])]);
    [
        ("u8", U8(200)),
        ("i8", I8(-100)),
        ("u16", U16(60_000)),
        ("i16", I16(-30_000)),
        ("u32", U32(4_000_000_000)),
        ("i32", I32(-2_000_000_000)),
        ("u64", U64(u64::MAX)),
        ("i64", I64(i64::MIN)),
        ("f32", F32(0.1)),
        ("f64", F64(-1e300)),
        ("bool", Bool(true)),
        ("string", String("{% for m in messages %}…".into())),
        ("strings", strings),
        ("nested", nested),
        ("empty", Array(Vec::new())),
    ]
    .into_iter()
    .map(|(k, v)| (format!("test.{k}"), v))
    .collect()
}

fn small_file() -> Vec<u8> {
    let tensors = [
        TensorToWrite::f32("a", 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        TensorToWrite::f32("b", 1, 5, &[7.0; 5]),
    ];
    to_bytes(&every_type(), &tensors)
}

#[test]
fn every_value_type_round_trips_in_order() {
    let content = parse(&small_file()).expect("valid file");
    assert_eq!(content.version(), 3);
    let read: Vec<(String, GgufValue)> = content
        .metadata()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(read, every_type());
    assert_eq!(
        content.get("test.u32").and_then(GgufValue::as_u64),
        Some(4_000_000_000)
    );
    assert_eq!(content.get("test.missing"), None);
    let names: Vec<&str> = content.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = &content.tensors()[0];
    assert_eq!(
        (a.dims.clone(), a.shape(), a.elements()),
        (vec![3, 2], vec![2, 3], 6)
    );
    assert_eq!(content.alignment(), 32);
    assert_eq!(content.data_start() % 32, 0);
}

#[test]
fn a_mapped_file_gives_tensor_bytes_and_values() {
    let dir = TempDir::new("gguf-map");
    let path = dir.path().join("small.gguf");
    std::fs::write(&path, small_file()).expect("write");
    let file = GgufFile::open(&path).expect("open");
    assert_eq!(file.path(), path);
    let b = &file.tensors()[1];
    assert_eq!(file.dequantize(b).expect("f32"), vec![7.0; 5]);
    assert_eq!(file.tensor_bytes(b).expect("bytes").len(), 20);
    assert_eq!(file.metadata().count(), every_type().len());
}

#[test]
fn a_custom_alignment_is_honoured() {
    let metadata = vec![("general.alignment".to_string(), GgufValue::U32(64))];
    let tensors = [
        TensorToWrite::f32("x", 1, 3, &[1.0, 2.0, 3.0]),
        TensorToWrite::f32("y", 1, 1, &[4.0]),
    ];
    let content = parse(&to_bytes(&metadata, &tensors)).expect("valid");
    assert_eq!(content.alignment(), 64);
    assert_eq!(content.tensors()[1].offset, 64);
    assert_eq!(content.data_start() % 64, 0);
}

#[test]
fn every_truncation_is_an_error_naming_a_field() {
    let bytes = small_file();
    for len in 0..bytes.len() {
        match parse(&bytes[..len]) {
            Err(CheckpointError::Truncated { field, .. }) => assert!(!field.is_empty()),
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn truncated_tensor_data_names_the_tensor() {
    let bytes = small_file();
    let err = parse(&bytes[..bytes.len() - 1]).expect_err("last tensor cut");
    let msg = err.to_string();
    assert!(msg.contains("tensor `b` data"), "{msg}");
}

/// Bytes of a header with one metadata key of type `ty` followed by `value`.
fn one_key(ty: u32, value: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(5u64.to_le_bytes());
    b.extend(b"k.key");
    b.extend(ty.to_le_bytes());
    b.extend(value);
    b
}

fn corrupt_reason(bytes: &[u8]) -> String {
    match parse(bytes) {
        Err(e @ (CheckpointError::Corrupt { .. } | CheckpointError::Unsupported { .. })) => {
            e.to_string()
        }
        Err(CheckpointError::InvalidField { field, reason, .. }) => format!("{field}: {reason}"),
        other => panic!("expected a corrupt-file error, got {other:?}"),
    }
}

#[test]
fn corrupt_headers_are_named() {
    let mut bad_magic = small_file();
    bad_magic[0] = b'X';
    assert!(corrupt_reason(&bad_magic).contains("magic"));

    let mut v1 = small_file();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(corrupt_reason(&v1).contains("version 1"));
    let mut big_endian = small_file();
    big_endian[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(corrupt_reason(&big_endian).contains("big-endian"));

    assert!(corrupt_reason(&one_key(13, &[])).contains("unknown value type 13"));
    assert!(corrupt_reason(&one_key(7, &[2])).contains("bool byte is 2"));
    let mut bad_utf8 = 2u64.to_le_bytes().to_vec();
    bad_utf8.extend([0xC3, 0x28]);
    let msg = corrupt_reason(&one_key(8, &bad_utf8));
    assert!(msg.contains("`k.key`") && msg.contains("UTF-8"), "{msg}");
    let mut bad_array = 99u32.to_le_bytes().to_vec();
    bad_array.extend(1u64.to_le_bytes());
    assert!(corrupt_reason(&one_key(9, &bad_array)).contains("array element type 99"));
}

#[test]
fn arrays_nested_too_deep_are_refused() {
    let mut value = Vec::new();
    for _ in 0..20 {
        value.extend(9u32.to_le_bytes());
        value.extend(1u64.to_le_bytes());
    }
    assert!(corrupt_reason(&one_key(9, &value)).contains("nested deeper"));
}

#[test]
fn huge_counts_fail_without_allocating_them() {
    let mut array = 0u32.to_le_bytes().to_vec();
    array.extend(u64::MAX.to_le_bytes());
    assert!(matches!(
        parse(&one_key(9, &array)),
        Err(CheckpointError::Truncated { .. })
    ));
    let mut many_keys = small_file();
    many_keys[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(parse(&many_keys).is_err());
    let mut many_tensors = small_file();
    many_tensors[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(parse(&many_tensors).is_err());
}

fn file_with(metadata: &[(String, GgufValue)], tensors: &[TensorToWrite]) -> String {
    corrupt_reason(&to_bytes(metadata, tensors))
}

#[test]
fn bad_alignment_duplicates_and_tensor_infos_are_named() {
    let t = TensorToWrite::f32("t", 1, 32, &[0.0; 32]);
    let align = |v| vec![("general.alignment".to_string(), v)];
    assert!(
        file_with(&align(GgufValue::U32(48)), std::slice::from_ref(&t)).contains("power of two")
    );
    assert!(
        file_with(&align(GgufValue::U64(32)), std::slice::from_ref(&t)).contains("expected u32")
    );
    let dup = vec![
        ("a".to_string(), GgufValue::U8(1)),
        ("a".to_string(), GgufValue::U8(2)),
    ];
    assert!(file_with(&dup, &[]).contains("duplicate key"));
    assert!(file_with(&[], &[t.clone(), t.clone()]).contains("duplicate tensor name"));

    let mut five_dims = t.clone();
    five_dims.dims = vec![32, 1, 1, 1, 1];
    assert!(file_with(&[], &[five_dims]).contains("n_dims"));
    let mut unknown = t.clone();
    unknown.ggml_type = GgmlType::from_id(8).expect("Q8_0");
    unknown.dims = vec![31];
    assert!(file_with(&[], &[unknown]).contains("not a multiple of the Q8_0 block size"));
    let mut overflow = t.clone();
    overflow.dims = vec![1 << 32, 1 << 32, 4];
    assert!(file_with(&[], &[overflow]).contains("overflows"));
}

#[test]
fn unknown_types_and_misaligned_offsets_are_named() {
    let bytes = to_bytes(&[], &[TensorToWrite::f32("t", 1, 8, &[0.0; 8])]);
    // The tensor info ends with: type u32, offset u64, then padding to 32.
    let info_end = 24 + 8 + 1 + 4 + 8 + 4 + 8;
    let mut unknown = bytes.clone();
    unknown[info_end - 12..info_end - 8].copy_from_slice(&77u32.to_le_bytes());
    assert!(corrupt_reason(&unknown).contains("unknown ggml type id 77"));
    let mut misaligned = bytes.clone();
    misaligned[info_end - 8..info_end].copy_from_slice(&4u64.to_le_bytes());
    assert!(corrupt_reason(&misaligned).contains("not a multiple of the alignment 32"));
    let mut outside = bytes;
    outside[info_end - 8..info_end].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        parse(&outside),
        Err(CheckpointError::Truncated { .. })
    ));
}

#[test]
fn random_corruption_never_panics() {
    let config = tiny_config(true);
    let bytes = tiny_gguf(&config, &tiny_tensors(&config, 1));
    let header_len = 4096.min(bytes.len());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..3000 {
        let mut b = bytes[..header_len].to_vec();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..b.len());
            b[at] = rng.random();
        }
        let cut = rng.random_range(0..=b.len());
        match parse(&b[..cut]) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "{ok} parsed, {failed} failed");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = GgufFile::open(std::path::Path::new("no/such/model.gguf")).expect_err("missing");
    assert!(matches!(err, CheckpointError::Io { .. }));
    assert!(err.to_string().contains("no/such/model.gguf"));
}
