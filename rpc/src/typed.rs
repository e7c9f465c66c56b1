//! Typed envelopes over the byte-level bus: JSON encoding with a version check, and a handler
//! adapter that decodes before calling typed code.

use std::future::Future;
use std::marker::PhantomData;

use capsule_types::rpc::{Envelope, RPC_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Delivery, Disposition, Handler, RpcError};

/// Encodes an envelope.
pub fn encode<T: Serialize>(env: &Envelope<T>) -> Result<Vec<u8>, RpcError> {
    Ok(serde_json::to_vec(env)?)
}

/// Decodes an envelope, refusing versions newer than ours.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Envelope<T>, RpcError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let v: VersionOnly = serde_json::from_slice(bytes)?;
    if v.version > RPC_VERSION {
        return Err(RpcError::Version {
            got: v.version,
            ours: RPC_VERSION,
        });
    }
    Ok(serde_json::from_slice(bytes)?)
}

/// Adapts a function of typed envelopes into a [`Handler`]; undecodable messages are dropped
/// (they would fail the same way on every redelivery).
pub struct TypedHandler<T, F> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, F> TypedHandler<T, F> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<T, F, Fut> Handler for TypedHandler<T, F>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(Envelope<T>, Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Disposition> + Send,
{
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Disposition> + Send {
        let decoded = decode::<T>(&delivery.payload);
        let fut = decoded.map(|env| (self.f)(env, delivery));
        async move {
            match fut {
                Ok(fut) => fut.await,
                Err(e) => Disposition::Drop(format!("undecodable message: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_types::rpc::ComputeRequest;

    #[test]
    fn newer_versions_are_refused() {
        let mut env = Envelope::new(ComputeRequest::SyncCapsules { capsules: vec![] }, None);
        let ok = encode(&env).unwrap();
        assert!(decode::<ComputeRequest>(&ok).is_ok());
        env.version = RPC_VERSION + 1;
        let newer = encode(&env).unwrap();
        assert!(matches!(
            decode::<ComputeRequest>(&newer),
            Err(RpcError::Version { .. })
        ));
        assert!(matches!(
            decode::<ComputeRequest>(b"{not json"),
            Err(RpcError::Codec(_))
        ));
    }
}
