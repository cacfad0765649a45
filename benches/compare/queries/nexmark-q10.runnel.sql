-- input: nexmark
-- Nexmark q10, Runnel: the body of benches/nexmark/queries/q10.sql over the
-- exported events. Measured into ${SINK} like every pair, so its
-- PARTITIONED BY (a filesystem sink's) is left out here, as in the Flink file.
${NEXMARK_DDL}

${NEXMARK_QUERY}