//! Which served model each workload adapter is sent to.
//!
//! Adapter *k* goes to its `--model-map` entry (`ADAPTER=NAME`, the adapter by its workload
//! name or index), else to the *k*-th model of the server's `/v1/models` list, cycling when
//! the server lists fewer models than the workload has adapters (a server with one model
//! gets every request). A mapped name the server does not list is a warning, not an error:
//! its requests are sent and their failures counted.

use fastlibra_runtime::workload::AdapterSpec;

use super::HttpError;
use super::client::Client;
use super::openai::{parse_models, truncate};

/// The adapter → model table and what the user should know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// Model name per workload adapter.
    pub models: Vec<String>,
    /// Names the server does not list, and similar.
    pub warnings: Vec<String>,
}

/// The server's `/v1/models` list.
pub async fn list(client: &Client) -> Result<Vec<String>, String> {
    let (status, body) = client.call("/v1/models", None).await?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", truncate(&body)));
    }
    parse_models(&body)
}

/// Resolves every adapter's model name.
pub fn resolve(
    adapters: &[AdapterSpec],
    map: &[String],
    listed: &[String],
) -> Result<Served, HttpError> {
    let mut mapped: Vec<Option<String>> = vec![None; adapters.len()];
    let mut warnings = Vec::new();
    for entry in map {
        let bad = |why: &str| HttpError::ModelMap {
            entry: entry.clone(),
            why: why.to_string(),
        };
        let (adapter, name) = entry
            .split_once('=')
            .ok_or_else(|| bad("expected ADAPTER=NAME"))?;
        let (adapter, name) = (adapter.trim(), name.trim());
        if name.is_empty() {
            return Err(bad("empty model name"));
        }
        let index = adapters
            .iter()
            .position(|a| a.name == adapter)
            .or_else(|| {
                adapter
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| i < adapters.len())
            })
            .ok_or_else(|| {
                bad(&format!(
                    "the workload has no adapter `{adapter}` (give a name such as `{}` or an \
                     index below {})",
                    adapters.first().map_or("-", |a| a.name.as_str()),
                    adapters.len()
                ))
            })?;
        if mapped[index].is_some() {
            return Err(bad("this adapter is mapped twice"));
        }
        if !listed.is_empty() && !listed.iter().any(|m| m == name) {
            warnings.push(format!(
                "--model-map {entry}: the server's /v1/models does not list `{name}`; its \
                 requests will be sent and their failures counted"
            ));
        }
        mapped[index] = Some(name.to_string());
    }
    let unmapped = mapped.iter().filter(|m| m.is_none()).count();
    if listed.is_empty() && unmapped > 0 {
        warnings.push(format!(
            "{unmapped} adapters have no --model-map entry and the server listed no models: \
             they are sent under their workload names"
        ));
    }
    let models = mapped
        .into_iter()
        .enumerate()
        .map(|(k, m)| {
            m.unwrap_or_else(|| match listed.len() {
                0 => adapters[k].name.clone(),
                n => listed[k % n].clone(),
            })
        })
        .collect();
    Ok(Served { models, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapters(n: u32) -> Vec<AdapterSpec> {
        (0..n)
            .map(|i| AdapterSpec {
                name: format!("lora-{i}"),
                rank: 8,
            })
            .collect()
    }

    fn listed(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unmapped_adapters_cycle_through_the_listed_models() {
        let s = resolve(&adapters(5), &[], &listed(&["a", "b"])).expect("ok");
        assert_eq!(s.models, listed(&["a", "b", "a", "b", "a"]));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn map_entries_win_by_name_or_index_and_unlisted_names_warn() {
        let map = vec!["lora-1=x".to_string(), "2 = b".to_string()];
        let s = resolve(&adapters(3), &map, &listed(&["a", "b"])).expect("ok");
        assert_eq!(s.models, listed(&["a", "x", "b"]));
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("`x`"));
    }

    #[test]
    fn bad_entries_are_errors() {
        let a = adapters(2);
        for bad in ["nope", "lora-9=x", "5=x", "lora-0=", "x=y"] {
            assert!(resolve(&a, &[bad.to_string()], &[]).is_err(), "{bad}");
        }
        let twice = vec!["0=a".to_string(), "lora-0=b".to_string()];
        assert!(resolve(&a, &twice, &[]).is_err());
    }

    #[test]
    fn without_a_listing_adapters_keep_their_names() {
        let s = resolve(&adapters(2), &[], &[]).expect("ok");
        assert_eq!(s.models, listed(&["lora-0", "lora-1"]));
        assert_eq!(s.warnings.len(), 1);
    }
}
