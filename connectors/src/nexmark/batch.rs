//! Arrow columns for a batch of nexmark events: `event_type` and the three
//! nested rows, of which each event fills one and leaves the others null.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBufferBuilder, Int32Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::columns::{Longs, Texts};

pub const PERSON: i32 = 0;
pub const AUCTION: i32 = 1;
pub const BID: i32 = 2;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn fields(columns: &[(&str, DataType)]) -> Fields {
    columns
        .iter()
        .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
        .collect()
}

pub fn person_fields() -> Fields {
    fields(&[
        ("id", DataType::Int64),
        ("name", DataType::Utf8),
        ("emailAddress", DataType::Utf8),
        ("creditCard", DataType::Utf8),
        ("city", DataType::Utf8),
        ("state", DataType::Utf8),
        ("dateTime", timestamp()),
        ("extra", DataType::Utf8),
    ])
}

pub fn auction_fields() -> Fields {
    fields(&[
        ("id", DataType::Int64),
        ("itemName", DataType::Utf8),
        ("description", DataType::Utf8),
        ("initialBid", DataType::Int64),
        ("reserve", DataType::Int64),
        ("dateTime", timestamp()),
        ("expires", timestamp()),
        ("seller", DataType::Int64),
        ("category", DataType::Int64),
        ("extra", DataType::Utf8),
    ])
}

pub fn bid_fields() -> Fields {
    fields(&[
        ("auction", DataType::Int64),
        ("bidder", DataType::Int64),
        ("price", DataType::Int64),
        ("channel", DataType::Utf8),
        ("url", DataType::Utf8),
        ("dateTime", timestamp()),
        ("extra", DataType::Utf8),
    ])
}

/// The physical columns of Flink's nexmark table, as Runnel's DDL types them
/// (every column and nested field nullable).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_type", DataType::Int32, true),
        Field::new("person", DataType::Struct(person_fields()), true),
        Field::new("auction", DataType::Struct(auction_fields()), true),
        Field::new("bid", DataType::Struct(bid_fields()), true),
    ]))
}

/// Every row null until `set_bit`.
fn unset(rows: usize) -> BooleanBufferBuilder {
    let mut valid = BooleanBufferBuilder::new(rows);
    valid.append_n(rows, false);
    valid
}

pub struct PersonColumns {
    valid: BooleanBufferBuilder,
    used: bool,
    pub id: Longs,
    pub name: Texts,
    pub email_address: Texts,
    pub credit_card: Texts,
    pub city: Texts,
    pub state: Texts,
    pub date_time: Longs,
    pub extra: Texts,
}

pub struct AuctionColumns {
    valid: BooleanBufferBuilder,
    used: bool,
    pub id: Longs,
    pub item_name: Texts,
    pub description: Texts,
    pub initial_bid: Longs,
    pub reserve: Longs,
    pub date_time: Longs,
    pub expires: Longs,
    pub seller: Longs,
    pub category: Longs,
    pub extra: Texts,
}

pub struct BidColumns {
    valid: BooleanBufferBuilder,
    used: bool,
    pub auction: Longs,
    pub bidder: Longs,
    pub price: Longs,
    pub channel: Texts,
    pub url: Texts,
    pub date_time: Longs,
    pub extra: Texts,
}

fn strings(rows: usize, bytes: usize) -> Texts {
    Texts::new(rows, bytes)
}

impl PersonColumns {
    fn fields(&self) -> Fields {
        person_fields()
    }

    fn new(rows: usize, extra: usize) -> Self {
        PersonColumns {
            valid: unset(rows),
            used: false,
            id: Longs::new(rows),
            name: strings(rows, rows / 32 * 16),
            email_address: strings(rows, rows / 32 * 16),
            credit_card: strings(rows, rows / 32 * 20),
            city: strings(rows, rows / 32 * 12),
            state: strings(rows, rows / 32 * 2),
            date_time: Longs::new(rows),
            extra: strings(rows, rows / 32 * extra),
        }
    }

    /// Marks the row valid; the caller appends every field.
    fn begin(&mut self, row: usize) {
        self.valid.set_bit(row, true);
        self.used = true;
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        if !self.used {
            return Ok(StructArray::new_null(self.fields(), self.valid.len()));
        }
        let nulls = NullBuffer::new(self.valid.finish());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish(&nulls)),
            Arc::new(self.name.finish(&nulls)?),
            Arc::new(self.email_address.finish(&nulls)?),
            Arc::new(self.credit_card.finish(&nulls)?),
            Arc::new(self.city.finish(&nulls)?),
            Arc::new(self.state.finish(&nulls)?),
            Arc::new(self.date_time.finish_timestamps(&nulls)),
            Arc::new(self.extra.finish(&nulls)?),
        ];
        StructArray::try_new(person_fields(), columns, Some(nulls))
    }
}

impl AuctionColumns {
    fn fields(&self) -> Fields {
        auction_fields()
    }

    fn new(rows: usize, extra: usize) -> Self {
        AuctionColumns {
            valid: unset(rows),
            used: false,
            id: Longs::new(rows),
            item_name: strings(rows, rows / 16 * 12),
            description: strings(rows, rows / 16 * 50),
            initial_bid: Longs::new(rows),
            reserve: Longs::new(rows),
            date_time: Longs::new(rows),
            expires: Longs::new(rows),
            seller: Longs::new(rows),
            category: Longs::new(rows),
            extra: strings(rows, rows / 16 * extra),
        }
    }

    fn begin(&mut self, row: usize) {
        self.valid.set_bit(row, true);
        self.used = true;
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        if !self.used {
            return Ok(StructArray::new_null(self.fields(), self.valid.len()));
        }
        let nulls = NullBuffer::new(self.valid.finish());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish(&nulls)),
            Arc::new(self.item_name.finish(&nulls)?),
            Arc::new(self.description.finish(&nulls)?),
            Arc::new(self.initial_bid.finish(&nulls)),
            Arc::new(self.reserve.finish(&nulls)),
            Arc::new(self.date_time.finish_timestamps(&nulls)),
            Arc::new(self.expires.finish_timestamps(&nulls)),
            Arc::new(self.seller.finish(&nulls)),
            Arc::new(self.category.finish(&nulls)),
            Arc::new(self.extra.finish(&nulls)?),
        ];
        StructArray::try_new(auction_fields(), columns, Some(nulls))
    }
}

impl BidColumns {
    fn fields(&self) -> Fields {
        bid_fields()
    }

    fn new(rows: usize, extra: usize) -> Self {
        BidColumns {
            valid: unset(rows),
            used: false,
            auction: Longs::new(rows),
            bidder: Longs::new(rows),
            price: Longs::new(rows),
            channel: strings(rows, rows * 8),
            url: strings(rows, rows * 80),
            date_time: Longs::new(rows),
            extra: strings(rows, rows * extra),
        }
    }

    fn begin(&mut self, row: usize) {
        self.valid.set_bit(row, true);
        self.used = true;
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        if !self.used {
            return Ok(StructArray::new_null(self.fields(), self.valid.len()));
        }
        let nulls = NullBuffer::new(self.valid.finish());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.auction.finish(&nulls)),
            Arc::new(self.bidder.finish(&nulls)),
            Arc::new(self.price.finish(&nulls)),
            Arc::new(self.channel.finish(&nulls)?),
            Arc::new(self.url.finish(&nulls)?),
            Arc::new(self.date_time.finish_timestamps(&nulls)),
            Arc::new(self.extra.finish(&nulls)?),
        ];
        StructArray::try_new(bid_fields(), columns, Some(nulls))
    }
}

/// One batch of exactly `rows` events under construction. An event is
/// written by `person()`, `auction()` or `bid()`, which hand back the
/// columns to fill and the row to fill them at; the other two rows stay
/// null.
pub struct EventBatchBuilder {
    event_type: Vec<i32>,
    person: PersonColumns,
    auction: AuctionColumns,
    bid: BidColumns,
}

impl EventBatchBuilder {
    /// `extra` is the most padding an event of each kind gets (person,
    /// auction, bid), to size the buffers once.
    pub fn new(rows: usize, extra: [usize; 3]) -> Self {
        EventBatchBuilder {
            event_type: Vec::with_capacity(rows),
            person: PersonColumns::new(rows, extra[0]),
            auction: AuctionColumns::new(rows, extra[1]),
            bid: BidColumns::new(rows, extra[2]),
        }
    }

    pub fn person(&mut self) -> (&mut PersonColumns, usize) {
        let row = self.event_type.len();
        self.event_type.push(PERSON);
        self.person.begin(row);
        (&mut self.person, row)
    }

    pub fn auction(&mut self) -> (&mut AuctionColumns, usize) {
        let row = self.event_type.len();
        self.event_type.push(AUCTION);
        self.auction.begin(row);
        (&mut self.auction, row)
    }

    pub fn bid(&mut self) -> (&mut BidColumns, usize) {
        let row = self.event_type.len();
        self.event_type.push(BID);
        self.bid.begin(row);
        (&mut self.bid, row)
    }

    /// The batch, with `schema` (the table's own, equal to [`schema()`]).
    pub fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {
        let event_type = Int32Array::from(std::mem::take(&mut self.event_type));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(event_type),
                Arc::new(self.person.finish()?),
                Arc::new(self.auction.finish()?),
                Arc::new(self.bid.finish()?),
            ],
        )
    }
}
