//! Rendered list pages of a project, reused while the project's generation (bumped in the same
//! transaction as every change to its capsules) is unchanged. Reading the generation is one
//! row, so a hit costs one small query instead of loading and rendering every capsule; several
//! API replicas stay correct because each reads the generation from the shared database.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use capsule_types::microversion::ApiVersion;
use db::ListParams;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Everything a rendered page depends on besides the project's capsules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListKey {
    /// The project listed.
    pub project: String,
    /// Page parameters.
    pub limit: u64,
    /// Marker.
    pub marker: Option<String>,
    /// Sort key name.
    pub sort_key: &'static str,
    /// Sort direction name.
    pub sort_dir: &'static str,
    /// Microversion (legacy or current view).
    pub version: ApiVersion,
    /// Which fields policy hides from the caller.
    pub mask: u64,
    /// Base URL of links.
    pub base_url: String,
}

impl ListKey {
    /// The key of a page of `project`.
    pub fn new(
        project: &str,
        p: &ListParams,
        version: ApiVersion,
        mask: u64,
        base_url: &str,
    ) -> Self {
        Self {
            project: project.to_owned(),
            limit: p.limit,
            marker: p.marker.clone(),
            sort_key: p.sort_key.as_str(),
            sort_dir: p.sort_dir.as_str(),
            version,
            mask,
            base_url: base_url.to_owned(),
        }
    }
}

/// A rendered page and the generation it was rendered at.
#[derive(Debug)]
pub struct CachedPage {
    /// Project generation read before the page was loaded.
    pub generation: i64,
    /// The JSON body.
    pub body: Bytes,
    gzip: OnceLock<Bytes>,
}

impl CachedPage {
    /// A page rendered at `generation`.
    pub fn new(generation: i64, body: Vec<u8>) -> Self {
        Self {
            generation,
            body: Bytes::from(body),
            gzip: OnceLock::new(),
        }
    }

    /// The body gzip-compressed, computed once.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut enc =
                    GzEncoder::new(Vec::with_capacity(self.body.len() / 8), Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&self.body);
                Bytes::from(enc.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// The cache, bounded by the bytes it holds.
#[derive(Clone, Debug)]
pub struct ListCache {
    pages: moka::sync::Cache<ListKey, Arc<CachedPage>>,
}

impl ListCache {
    /// A cache holding at most `max_bytes` of rendered pages.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            pages: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, v: &Arc<CachedPage>| {
                    u32::try_from(v.body.len() + v.body.len() / 8).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The page for `key` if it was rendered at `generation`.
    pub fn get(&self, key: &ListKey, generation: i64) -> Option<Arc<CachedPage>> {
        self.pages.get(key).filter(|p| p.generation == generation)
    }

    /// Remembers a page.
    pub fn insert(&self, key: ListKey, page: Arc<CachedPage>) {
        self.pages.insert(key, page);
    }
}

/// A stable fingerprint of a set of hidden field names.
pub fn fingerprint<'a>(fields: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut v: Vec<&str> = fields.into_iter().collect();
    v.sort_unstable();
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn stale_generations_miss() {
        let c = ListCache::new(1 << 20);
        let key = ListKey::new("p", &ListParams::default(), ApiVersion::MAX, 0, "http://x");
        c.insert(key.clone(), Arc::new(CachedPage::new(3, b"[]".to_vec())));
        assert!(c.get(&key, 3).is_some());
        assert!(c.get(&key, 4).is_none());
        let other = ListKey::new("p", &ListParams::default(), ApiVersion::MIN, 0, "http://x");
        assert!(c.get(&other, 3).is_none());
    }

    #[test]
    fn gzip_round_trips() {
        let page = CachedPage::new(1, br#"{"capsules": [], "next": null}"#.to_vec());
        let mut out = String::new();
        GzDecoder::new(&page.gzip()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &page.body[..]);
    }

    #[test]
    fn fingerprint_ignores_order() {
        assert_eq!(fingerprint(["a", "b"]), fingerprint(["b", "a"]));
        assert_ne!(fingerprint(["a"]), fingerprint(["b"]));
    }
}
