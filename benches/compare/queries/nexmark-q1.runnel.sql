-- input: nexmark
-- Nexmark q1, Runnel: the body of benches/nexmark/queries/q1.sql (see its
-- comment for how it differs from Flink's) over the exported events.
${NEXMARK_DDL}

${NEXMARK_QUERY}