//! Recycled packet buffers for the forwarding path: each packet written for a consumer
//! goes into a buffer taken from the pool, is protected in place and handed to the
//! driver, which gives the buffer back once the datagram is sent. The steady state
//! allocates nothing per packet.

/// Capacity of a fresh buffer: a full-size datagram plus SRTP's tag and MKI room.
const BUFFER_CAPACITY: usize = 1500;

/// Buffers kept at most; more are freed (a burst's high-water mark is not held on to).
const MAX_POOLED: usize = 4096;

/// A free list of packet buffers.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// An empty buffer with room for a datagram.
    pub fn take(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY))
    }

    /// Gives a buffer back (cleared); dropped when the pool is full or the buffer grew
    /// unusually large.
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if self.free.len() < MAX_POOLED && buf.capacity() <= 4 * BUFFER_CAPACITY {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Buffers waiting in the pool.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// Whether the pool is empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_cleared_buffers_up_to_a_bound() {
        let mut pool = BufferPool::default();
        let mut b = pool.take();
        b.extend_from_slice(&[1, 2, 3]);
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        pool.give(vec![0; 100_000]);
        assert!(pool.is_empty(), "oversized buffers are not kept");
        for _ in 0..MAX_POOLED + 10 {
            pool.give(Vec::with_capacity(10));
        }
        assert_eq!(pool.len(), MAX_POOLED);
    }
}
