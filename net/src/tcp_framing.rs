//! RFC 4571 framing of RTP, RTCP, STUN and DTLS over TCP (ICE-TCP, RFC 6544 §3): every
//! packet is preceded by its length as a 16-bit big-endian number.
//!
//! [`FrameDecoder`] reassembles frames from a byte stream into a buffer that it owns and
//! that never grows beyond one maximum frame plus one read (bounded whatever the peer
//! sends); the caller reads from the socket straight into [`FrameDecoder::spare`].

/// Largest frame that the 16-bit length can announce.
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Why a frame cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The packet is longer than a 16-bit length can say.
    #[error("a {0}-byte packet does not fit an RFC 4571 frame")]
    TooLong(usize),
}

/// Reassembles RFC 4571 frames from a TCP byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameDecoder {
    /// An empty decoder; its buffer is allocated on the first read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Space to read the socket into; call [`FrameDecoder::commit`] with the count read.
    /// Always at least one byte long.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            // Slide what is pending to the front before growing.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let want = (self.end + READ_CHUNK).min(2 + MAX_FRAME + READ_CHUNK);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`FrameDecoder::spare`].
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete frame, if one has arrived. Empty frames are skipped.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if pending.len() < 2 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
            if pending.len() < 2 + len {
                return None;
            }
            let at = self.start + 2;
            self.start = at + len;
            if len > 0 {
                return Some(&self.buf[at..at + len]);
            }
        }
    }
}

/// The 2-byte length prefix of a frame carrying `len` bytes.
pub fn frame_header(len: usize) -> Result<[u8; 2], FramingError> {
    u16::try_from(len)
        .map(u16::to_be_bytes)
        .map_err(|_| FramingError::TooLong(len))
}

/// Appends `packet` framed to `out`.
pub fn write_frame(packet: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
    out.extend_from_slice(&frame_header(packet.len())?);
    out.extend_from_slice(packet);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut FrameDecoder, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while !data.is_empty() {
            let spare = d.spare();
            let n = spare.len().min(data.len()).min(7); // small, odd reads
            spare[..n].copy_from_slice(&data[..n]);
            d.commit(n);
            data = &data[n..];
            while let Some(f) = d.next_frame() {
                frames.push(f.to_vec());
            }
        }
        frames
    }

    #[test]
    fn reassembles_frames_split_anywhere() {
        let mut stream = Vec::new();
        write_frame(b"hello", &mut stream).unwrap();
        write_frame(b"", &mut stream).unwrap();
        write_frame(&[7; 300], &mut stream).unwrap();
        let mut d = FrameDecoder::new();
        let frames = feed(&mut d, &stream);
        assert_eq!(frames, vec![b"hello".to_vec(), vec![7; 300]]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn largest_frames_and_partial_tail() {
        let mut stream = Vec::new();
        for i in 0..3u8 {
            write_frame(&vec![i; MAX_FRAME], &mut stream).unwrap();
        }
        stream.extend_from_slice(&[0x00, 0x05, 1, 2]);
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        let mut data = &stream[..];
        while !data.is_empty() {
            let spare = d.spare();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            d.commit(n);
            data = &data[n..];
            while let Some(f) = d.next_frame() {
                frames.push((f.len(), f[0]));
            }
            assert!(d.buf.len() <= 2 + MAX_FRAME + READ_CHUNK);
        }
        assert_eq!(frames, vec![(MAX_FRAME, 0), (MAX_FRAME, 1), (MAX_FRAME, 2)]);
        assert_eq!(d.buffered(), 4);
    }

    #[test]
    fn refuses_oversized_packets() {
        let mut out = Vec::new();
        assert_eq!(
            write_frame(&vec![0; MAX_FRAME + 1], &mut out),
            Err(FramingError::TooLong(MAX_FRAME + 1))
        );
        assert!(out.is_empty());
        assert_eq!(frame_header(258), Ok([1, 2]));
    }
}
