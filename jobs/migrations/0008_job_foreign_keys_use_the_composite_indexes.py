"""The job's foreign keys lose their own indexes: job_client_recent, job_client_state and
job_account_recent start with the same columns and serve every lookup by client or account
(the cascades too), and each index more is work on every job INSERT and UPDATE.

Only the two indexes are dropped. Django's own AlterField would also drop and re-add both
foreign-key constraints, re-checking every row of the job table under a lock."""

import django.db.models.deletion
from django.db import migrations, models

DROP = [
    'DROP INDEX IF EXISTS "jobs_job_account_id_13ba4f70"',
    'DROP INDEX IF EXISTS "jobs_job_client_id_8aaadee3"',
]
CREATE = [
    'CREATE INDEX "jobs_job_account_id_13ba4f70" ON "jobs_job" ("account_id")',
    'CREATE INDEX "jobs_job_client_id_8aaadee3" ON "jobs_job" ("client_id")',
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_app_quota"),
        ("jobs", "0007_quota_parked_index_covers_queued"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(drop, create) for drop, create in zip(DROP, CREATE)],
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="jobs",
                        to="accounts.flickraccount",
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="client",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="jobs",
                        to="accounts.apiclient",
                    ),
                ),
            ],
        ),
    ]
