//! The gRPC codec of our services: prost messages, but each message is encoded into a
//! reused scratch `Vec<u8>` and copied into tonic's buffer in one piece.
//!
//! Why: tonic's `EncodeBuf` does not override `BufMut::put_u8`, so prost writing a varint
//! byte by byte straight into it costs one out-of-line `BytesMut::put_slice` (bounds
//! check, reserve, `memcpy`) per byte; a `Stat` alone has eleven varints. Into a `Vec<u8>`
//! each byte is a store. Decoding is prost's, unchanged.

use std::marker::PhantomData;

use bytes::BufMut;
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

/// Scratch buffers above this capacity are released after use (a large reply does not
/// pin its size for the life of the stream).
const KEEP_SCRATCH: usize = 64 << 10;

/// A [`Codec`] for prost messages `T` (sent) and `U` (received); the generated clients
/// and servers use it (`codec_path` in `build.rs`).
#[derive(Debug)]
pub struct FastCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for FastCodec<T, U> {
    fn default() -> Self {
        FastCodec(PhantomData)
    }
}

impl<T, U> Codec for FastCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ScratchEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ScratchEncoder {
            scratch: Vec::new(),
            _t: PhantomData,
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Encodes each message into a reused `Vec<u8>`, then into tonic's buffer at once.
#[derive(Debug)]
pub struct ScratchEncoder<T> {
    scratch: Vec<u8>,
    _t: PhantomData<T>,
}

impl<T: Message> Encoder for ScratchEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.scratch.clear();
        // A Vec grows as needed, so this cannot run out of space.
        item.encode(&mut self.scratch)
            .map_err(|e| Status::internal(format!("encoding a message: {e}")))?;
        buf.put_slice(&self.scratch);
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}
