-- input: nexmark
-- Nexmark q18, Runnel: the body of benches/nexmark/queries/q18.sql (see its
-- comment for how it differs from Flink's) over the exported events.
-- check: skip (updating output, which a filesystem JSON sink does not take in Flink)
${NEXMARK_DDL}

${NEXMARK_QUERY}