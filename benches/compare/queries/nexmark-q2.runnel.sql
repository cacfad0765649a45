-- input: nexmark
-- Nexmark q2, Runnel: the body of benches/nexmark/queries/q2.sql (see its
-- comment for how it differs from Flink's) over the exported events.
${NEXMARK_DDL}

${NEXMARK_QUERY}