-- input: nexmark
-- Nexmark q13, Runnel: the body of benches/nexmark/queries/q13.sql (see its
-- comment for how it differs from Flink's) over the exported events, the
-- side table from ${SIDE_INPUT}.
${NEXMARK_DDL}

${NEXMARK_QUERY}