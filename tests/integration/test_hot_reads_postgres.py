"""The hand-written hot-path statements (flickrhub/sqlrows.py) on PostgreSQL, where the claim is a
single UPDATE … RETURNING statement joined to the job's account, app and client: the tests of
jobs/tests/test_hot_reads.py (run there on SQLite), collected here to run again."""

from __future__ import annotations

from jobs.tests.test_hot_reads import (  # noqa: F401 (collected here to run on PostgreSQL)
    test_a_claimed_job_comes_with_its_account_app_and_client_and_no_further_reads,
    test_a_hand_written_insert_stores_the_row_the_orm_would,
    test_a_hand_written_update_leaves_expressions_and_relations_to_the_orm,
    test_a_hand_written_update_returns_a_field_as_the_rows_hold_it_after,
    test_a_job_read_with_its_relations,
    test_a_running_job_is_taken_over_only_when_redelivered_or_its_lease_ran_out,
    test_an_account_is_found_only_for_its_own_client_with_its_app,
    test_only_queued_and_retrying_jobs_are_claimed_and_an_unknown_id_is_none,
)
