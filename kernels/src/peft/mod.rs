//! LoRA adapters in Hugging Face PEFT's on-disk format (`adapter_config.json` and
//! `adapter_model.safetensors`): loading, checking against a [`crate::ModelSpec`], writing, and
//! splitting along the rank into fixed-size pages (S-LoRA's unified paging).
