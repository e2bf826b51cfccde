//! Line 10: the loopback ceiling, a plain TCP copy over 127.0.0.1 in 1 MiB writes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{BenchError, Measurement};

const CHUNK: usize = 1 << 20;

/// Copies `bytes` from one socket to another on this machine and counts what arrives.
pub(crate) async fn copy(bytes: u64) -> Result<Measurement, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sender = tokio::spawn(async move {
        let mut socket = TcpStream::connect(addr).await?;
        let chunk = vec![0x5a_u8; CHUNK];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            socket.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        socket.shutdown().await
    });
    let (mut socket, _) = listener.accept().await?;
    let mut buffer = vec![0_u8; CHUNK];
    let mut received = 0_u64;
    loop {
        match socket.read(&mut buffer).await? {
            0 => break,
            n => received += n as u64,
        }
    }
    sender.await.map_err(std::io::Error::other)??;
    Ok(Measurement { bytes: received, ..Measurement::default() })
}
