"""Imports write in partitions that several workers share (issue 9). An import that is in its
writing phase during the upgrade keeps its resume point as one partition covering all its groups."""

import django.db.models.deletion
from django.db import migrations, models


def one_partition_per_running_import(apps, schema_editor):
    ImportJob = apps.get_model("imports", "ImportJob")
    ImportPartition = apps.get_model("imports", "ImportPartition")
    StagedRow = apps.get_model("imports", "StagedRow")
    for job in ImportJob.objects.filter(phase="writing").exclude(status__in=("succeeded", "failed", "draft")):
        seqs = StagedRow.objects.filter(job=job).values_list("group_seq", flat=True)
        first, last = seqs.order_by("group_seq").first(), seqs.order_by("-group_seq").first()
        if first is not None:
            ImportPartition.objects.create(job=job, number=0, first_seq=first, last_seq=last,
                                           groups_total=job.groups_total, groups_done=job.groups_done,
                                           resume_seq=job.resume_seq)


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0008_import_revert'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportPartition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.SmallIntegerField()),
                ('first_seq', models.IntegerField(help_text="The first group's seq in this partition.")),
                ('last_seq', models.IntegerField(help_text="The last group's seq in this partition.")),
                ('groups_total', models.IntegerField(default=0)),
                ('groups_done', models.IntegerField(default=0)),
                ('resume_seq', models.IntegerField(default=-1, help_text="Resume point: the last committed group's first row.")),
                ('done', models.BooleanField(default=False)),
                ('runner', models.CharField(blank=True, default='', help_text='The token of the runner writing this partition; empty: free to claim.', max_length=36)),
                ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                ('chunks', models.IntegerField(default=0, help_text='Chunks committed (over every runner).')),
                ('runners', models.JSONField(blank=True, default=list, help_text='The workers that wrote chunks of it (hostname:pid).')),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='partitions', to='imports.importjob')),
            ],
            options={
                'ordering': ['job', 'number'],
                'constraints': [models.UniqueConstraint(fields=('job', 'number'), name='import_partition_unique')],
            },
        ),
        migrations.RunPython(one_partition_per_running_import, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='importjob',
            name='resume_seq',
        ),
    ]
