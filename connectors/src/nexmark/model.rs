//! What each event number becomes: Flink's nexmark generator (people,
//! auctions, bids; ids, hot keys, prices, channels), written straight into
//! Arrow builders.
//!
//! Every field is drawn from a `java.util.Random` seeded with the event id
//! (xor `seed`), in Flink's order, so ids, names, prices and times match
//! Flink's source for seed 0. Two things differ, both for speed or
//! determinism: the `extra` padding has Flink's length but its letters are
//! a slice of a fixed pool, and the channel urls come from a seeded random
//! instead of Flink's unseeded one.

use std::fmt::Write as _;
use std::sync::Arc;

use super::batch::EventBatchBuilder;
use super::config::NexmarkConfig;
use super::random::JavaRandom;

const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: i32 = 5;
const PERSON_ID_LEAD: i64 = 10;
const AUCTION_ID_LEAD: i64 = 10;
const HOT_SELLER_RATIO: i64 = 100;
const HOT_AUCTION_RATIO: i64 = 100;
const HOT_BIDDER_RATIO: i64 = 100;
const HOT_CHANNELS_RATIO: i32 = 2;
const CHANNELS_NUMBER: i32 = 10_000;
const MIN_STRING_LENGTH: i32 = 3;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// The tables a generator shares across workers: channel names and urls,
/// and the pool the `extra` padding is cut from.
pub struct Shared {
    hot_urls: Vec<String>,
    channels: Vec<String>,
    channel_urls: Vec<String>,
    pool: String,
    pool_window: i32,
}

impl Shared {
    pub fn new(config: &NexmarkConfig) -> Self {
        // A stream of its own ("nexmark" in ASCII), apart from the per-event ones.
        let mut random = JavaRandom::new(config.seed ^ 0x006e_6578_6d61_726b);
        let hot_urls = (0..HOT_CHANNELS.len())
            .map(|_| base_url(&mut random))
            .collect();
        let mut channels = Vec::with_capacity(CHANNELS_NUMBER as usize);
        let mut channel_urls = Vec::with_capacity(CHANNELS_NUMBER as usize);
        for i in 0..CHANNELS_NUMBER {
            let mut url = base_url(&mut random);
            if random.next_int(10) > 0 {
                let _ = write!(url, "&channel_id={}", i.reverse_bits().wrapping_abs());
            }
            channels.push(format!("channel-{i}"));
            channel_urls.push(url);
        }
        let longest = [
            config.avg_person_size,
            config.avg_auction_size,
            config.avg_bid_size,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(0) as usize
            * 2
            + 16;
        let pool_window = 1 << 16;
        let pool = (0..pool_window + longest)
            .map(|_| (b'a' + random.next_int(26) as u8) as char)
            .collect();
        Shared {
            hot_urls,
            channels,
            channel_urls,
            pool,
            pool_window: pool_window as i32,
        }
    }
}

fn base_url(random: &mut JavaRandom) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for part in 0..3 {
        if part > 0 {
            url.push('/');
        }
        let len = MIN_STRING_LENGTH + random.next_int(5 - MIN_STRING_LENGTH);
        for _ in 0..len {
            if random.next_int(13) == 0 {
                url.push('_');
            } else {
                url.push((b'a' + random.next_int(26) as u8) as char);
            }
        }
    }
    url.push_str("/item.htm?query=1");
    url
}

/// Generates events by number into a batch builder.
pub struct Generator {
    config: NexmarkConfig,
    shared: Arc<Shared>,
    scratch: String,
}

impl Generator {
    pub fn new(config: NexmarkConfig, shared: Arc<Shared>) -> Self {
        Generator {
            config,
            shared,
            scratch: String::with_capacity(128),
        }
    }

    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// How many of events `range` are people, auctions and bids.
    pub fn kind_counts(&self, range: std::ops::Range<u64>) -> [usize; 3] {
        let mut counts = [0; 3];
        for n in range {
            counts[self.kind(n)] += 1;
        }
        counts
    }

    /// 0 person, 1 auction, 2 bid: the event's place in the proportions.
    fn kind(&self, n: u64) -> usize {
        let rem = n % self.config.total_proportion();
        if rem < self.config.person_proportion {
            0
        } else if rem < self.config.person_proportion + self.config.auction_proportion {
            1
        } else {
            2
        }
    }

    /// Appends events `range` (global event numbers) to `outs`: all to
    /// the one builder given, or with three, each kind to its own.
    pub fn fill(&mut self, range: std::ops::Range<u64>, outs: &mut [EventBatchBuilder]) {
        let by_kind = outs.len() == 3;
        for n in range {
            let kind = self.kind(n);
            let out = &mut outs[if by_kind { kind } else { 0 }];
            let timestamp = self.config.timestamp(n);
            let mut random = JavaRandom::new(n as i64 ^ self.config.seed);
            match kind {
                0 => self.person(n, timestamp, &mut random, out),
                1 => self.auction(n, timestamp, &mut random, out),
                _ => self.bid(n, timestamp, &mut random, out),
            }
        }
    }

    fn last_base0_person_id(&self, event_id: u64) -> i64 {
        let total = self.config.total_proportion();
        let persons = self.config.person_proportion;
        let epoch = event_id / total;
        let offset = (event_id % total).min(persons - 1);
        (epoch * persons + offset) as i64
    }

    fn next_base0_person_id(&self, event_id: u64, random: &mut JavaRandom) -> i64 {
        let people = self.last_base0_person_id(event_id) + 1;
        let active = people.min(self.config.num_active_people);
        let n = random.next_long_below(active + PERSON_ID_LEAD);
        people - active + n
    }

    fn last_base0_auction_id(&self, event_id: u64) -> i64 {
        let total = self.config.total_proportion();
        let persons = self.config.person_proportion;
        let auctions = self.config.auction_proportion;
        let mut epoch = (event_id / total) as i64;
        let mut offset = (event_id % total) as i64;
        if offset < persons as i64 {
            epoch -= 1;
            offset = auctions as i64 - 1;
        } else if offset >= (persons + auctions) as i64 {
            offset = auctions as i64 - 1;
        } else {
            offset -= persons as i64;
        }
        epoch * auctions as i64 + offset
    }

    fn next_base0_auction_id(&self, event_id: u64, random: &mut JavaRandom) -> i64 {
        let max = self.last_base0_auction_id(event_id);
        let min = (max - self.config.num_in_flight_auctions).max(0);
        min + random.next_long_below(max - min + 1 + AUCTION_ID_LEAD)
    }

    fn person(
        &mut self,
        n: u64,
        timestamp: i64,
        random: &mut JavaRandom,
        out: &mut EventBatchBuilder,
    ) {
        let id = self.last_base0_person_id(n) + FIRST_PERSON_ID;
        let (columns, row) = out.person();
        columns.id.set(row, id);
        let first = FIRST_NAMES[random.next_int(FIRST_NAMES.len() as i32) as usize];
        let last = LAST_NAMES[random.next_int(LAST_NAMES.len() as i32) as usize];
        let mut size = first.len() + 1 + last.len();
        columns.name.set_parts(row, &[first, " ", last]);
        size += next_string(random, 7, &mut self.scratch);
        let user_len = self.scratch.len();
        size += 1 + next_string_appended(random, 5, &mut self.scratch) + 4;
        self.scratch.insert(user_len, '@');
        self.scratch.push_str(".com");
        columns.email_address.set(row, &self.scratch);
        self.scratch.clear();
        for i in 0..4 {
            if i > 0 {
                self.scratch.push(' ');
            }
            let _ = write!(self.scratch, "{:04}", random.next_int(10_000));
        }
        size += self.scratch.len();
        columns.credit_card.set(row, &self.scratch);
        let city = US_CITIES[random.next_int(US_CITIES.len() as i32) as usize];
        let state = US_STATES[random.next_int(US_STATES.len() as i32) as usize];
        size += city.len() + state.len();
        columns.city.set(row, city);
        columns.state.set(row, state);
        columns.date_time.set(row, timestamp);
        let extra = next_extra(
            random,
            8 + size as i32,
            self.config.avg_person_size,
            &self.shared,
        );
        columns.extra.set(row, extra);
    }

    fn auction(
        &mut self,
        n: u64,
        timestamp: i64,
        random: &mut JavaRandom,
        out: &mut EventBatchBuilder,
    ) {
        let id = self.last_base0_auction_id(n) + FIRST_AUCTION_ID;
        let seller = if random.next_int(self.config.hot_sellers_ratio) > 0 {
            (self.last_base0_person_id(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(n, random)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + random.next_int(NUM_CATEGORIES) as i64;
        let initial_bid = next_price(random);
        let expires = timestamp + self.auction_length_ms(n, timestamp, random);
        let (columns, row) = out.auction();
        columns.id.set(row, id);
        let mut size = next_string(random, 20, &mut self.scratch);
        columns.item_name.set(row, &self.scratch);
        size += next_string(random, 100, &mut self.scratch);
        columns.description.set(row, &self.scratch);
        let reserve = initial_bid + next_price(random);
        columns.initial_bid.set(row, initial_bid);
        columns.reserve.set(row, reserve);
        columns.date_time.set(row, timestamp);
        columns.expires.set(row, expires);
        columns.seller.set(row, seller);
        columns.category.set(row, category);
        let extra = next_extra(
            random,
            8 + size as i32 + 40,
            self.config.avg_auction_size,
            &self.shared,
        );
        columns.extra.set(row, extra);
    }

    /// An auction stays open for up to twice the time it takes for the
    /// in-flight number of auctions to be created after it.
    fn auction_length_ms(&self, n: u64, timestamp: i64, random: &mut JavaRandom) -> i64 {
        let events_for_auctions = (self.config.num_in_flight_auctions as u64
            * self.config.total_proportion())
            / self.config.auction_proportion;
        let future = self.config.timestamp(n + events_for_auctions);
        let horizon = future - timestamp;
        1 + random.next_long_below((horizon * 2).max(1))
    }

    fn bid(
        &mut self,
        n: u64,
        timestamp: i64,
        random: &mut JavaRandom,
        out: &mut EventBatchBuilder,
    ) {
        let auction = if random.next_int(self.config.hot_auction_ratio) > 0 {
            (self.last_base0_auction_id(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(n, random)
        } + FIRST_AUCTION_ID;
        let bidder = if random.next_int(self.config.hot_bidders_ratio) > 0 {
            (self.last_base0_person_id(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(n, random)
        } + FIRST_PERSON_ID;
        let price = next_price(random);
        let shared = &*self.shared;
        let (channel, url) = if random.next_int(HOT_CHANNELS_RATIO) > 0 {
            let i = random.next_int(HOT_CHANNELS.len() as i32) as usize;
            (HOT_CHANNELS[i], shared.hot_urls[i].as_str())
        } else {
            let i = random.next_int(CHANNELS_NUMBER) as usize;
            (shared.channels[i].as_str(), shared.channel_urls[i].as_str())
        };
        let (columns, row) = out.bid();
        columns.auction.set(row, auction);
        columns.bidder.set(row, bidder);
        columns.price.set(row, price);
        columns.channel.set(row, channel);
        columns.url.set(row, url);
        columns.date_time.set(row, timestamp);
        let extra = next_extra(random, 32, self.config.avg_bid_size, shared);
        columns.extra.set(row, extra);
    }
}

/// `nextPrice`: log-uniform over [1, 10^6] dollars, in cents.
fn next_price(random: &mut JavaRandom) -> i64 {
    (10f64.powf(random.next_double() * 6.0) * 100.0).round() as i64
}

/// Flink's `nextString` into `out` (cleared first); returns its length.
fn next_string(random: &mut JavaRandom, max_length: i32, out: &mut String) -> usize {
    out.clear();
    next_string_appended(random, max_length, out)
}

/// `nextString` appended to `out`; returns the appended length.
fn next_string_appended(random: &mut JavaRandom, max_length: i32, out: &mut String) -> usize {
    let start = out.len();
    let len = MIN_STRING_LENGTH + random.next_int(max_length - MIN_STRING_LENGTH);
    for _ in 0..len {
        if random.next_int(13) == 0 {
            out.push(' ');
        } else {
            out.push((b'a' + random.next_int(26) as u8) as char);
        }
    }
    // Java's trim(): drop the spaces at both ends of what was appended.
    let trimmed_end = start + out[start..].trim_end().len();
    out.truncate(trimmed_end);
    let leading = out[start..].len() - out[start..].trim_start().len();
    out.drain(start..start + leading);
    out.len() - start
}

/// `nextExtra`: padding whose length averages `average - current_size`.
fn next_extra<'a>(
    random: &mut JavaRandom,
    current_size: i32,
    average: i32,
    shared: &'a Shared,
) -> &'a str {
    if current_size > average {
        return "";
    }
    let wanted = average - current_size;
    let delta = (wanted as f64 * 0.2).round() as i32;
    let size = wanted - delta
        + if delta == 0 {
            0
        } else {
            random.next_int(2 * delta)
        };
    let start = random.next_int(shared.pool_window) as usize;
    shared
        .pool
        .get(start..start + size.max(0) as usize)
        .unwrap_or("")
}
