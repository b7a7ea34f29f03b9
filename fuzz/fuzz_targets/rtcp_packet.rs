//! RTCP compound packets: walk, read every field of every packet; never a panic, and
//! reports and feedback written back from what was read read the same again.
#![no_main]

use kolabmeet_net::rtcp::{
    RtcpPacket, SenderReportData, packets, read_every_field, write_receiver_report,
    write_sender_report,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_every_field(data);
    for p in packets(data).flatten() {
        let mut out = Vec::new();
        match p {
            RtcpPacket::SenderReport(sr) => {
                let blocks: Vec<_> = sr.blocks().map(|b| b.data()).collect();
                let info = SenderReportData {
                    ssrc: sr.ssrc(),
                    ntp: sr.ntp(),
                    rtp_time: sr.rtp_time(),
                    packets: sr.packets(),
                    octets: sr.octets(),
                };
                write_sender_report(&mut out, &info, &blocks);
                let Some(Ok(RtcpPacket::SenderReport(again))) = packets(&out).next() else {
                    panic!("a written SR does not read back");
                };
                assert_eq!((again.ntp(), again.rtp_time()), (info.ntp, info.rtp_time));
                assert!(again.blocks().map(|b| b.data()).eq(blocks));
            }
            RtcpPacket::ReceiverReport(rr) => {
                let blocks: Vec<_> = rr.blocks().map(|b| b.data()).collect();
                write_receiver_report(&mut out, rr.ssrc(), &blocks);
                let Some(Ok(RtcpPacket::ReceiverReport(again))) = packets(&out).next() else {
                    panic!("a written RR does not read back");
                };
                assert!(again.blocks().map(|b| b.data()).eq(blocks));
            }
            _ => {}
        }
    }
});
