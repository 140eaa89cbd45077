// Tests in tiers: testkit/src/tiers_build.rs.
include!("../testkit/src/tiers_build.rs");
