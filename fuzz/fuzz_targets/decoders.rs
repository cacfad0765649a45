// Reads a decoded body the way the Kinesis handlers do.

use crate::aws::Protocol;
use crate::aws::codec;
use crate::aws::request::Req;

/// Decodes a body and reads it the way the handlers do.
pub fn exercise(protocol: Protocol, data: &[u8]) {
    let Ok(map) = codec::decode(protocol, data, &crate::aws::shapes::KINESIS, "PutRecords") else {
        return;
    };
    let mut req = Req::new(map);
    let _ = req.opt_str("StreamName");
    let _ = req.str_len("ShardId", "shardId", 1, 128);
    let _ = req.opt_blob("Data");
    let _ = req.opt_time_ms("Timestamp");
    let _ = req.int_range("Limit", "limit", 1, 10_000);
    let _ = req.opt_bool("EnforceConsumerDeletion");
    let _ = req.opt_str_map("Tags");
    let _ = req.opt_str_list("TagKeys");
    if let Ok(Some(inner)) = req.opt_object("StartingPosition") {
        let _ = inner.opt_str("Type");
        let _ = inner.opt_time_ms("Timestamp");
    }
    if let Ok(Some(records)) = req.take_list("Records") {
        for record in records {
            if let Ok(mut record) = Req::from_owned(record) {
                let _ = record.str_len("PartitionKey", "partitionKey", 1, 256);
                let _ = record.opt_blob("Data");
                let _ = record.opt_str("ExplicitHashKey");
                let _ = record.finish();
            }
        }
    }
    let _ = req.finish();
}
