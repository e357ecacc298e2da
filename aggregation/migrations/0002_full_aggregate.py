from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    """The placeholder table held only counts: drop it and create the full aggregate.

    Aggregates are derived data; the reconciliation task recomputes every completed item.
    """

    dependencies = [
        ("aggregation", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="ItemAggregate"),
        migrations.CreateModel(
            name='ItemAggregate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('settings_fingerprint', models.CharField(db_index=True, max_length=64)),
                ('settings', models.JSONField(help_text='What the fingerprint was computed from (version, radius, size).')),
                ('inputs_digest', models.CharField(help_text='Hash of the annotations and geometry used.', max_length=64)),
                ('n_annotations', models.PositiveSmallIntegerField()),
                ('annotation_ids', models.JSONField(default=list)),
                ('plausibility_mean', models.FloatField()),
                ('plausibility_normalised', models.FloatField()),
                ('plausibility_maxdiff', models.FloatField()),
                ('alignment_mean', models.FloatField()),
                ('alignment_normalised', models.FloatField()),
                ('alignment_maxdiff', models.FloatField()),
                ('aesthetics_mean', models.FloatField()),
                ('aesthetics_normalised', models.FloatField()),
                ('aesthetics_maxdiff', models.FloatField()),
                ('overall_mean', models.FloatField()),
                ('overall_normalised', models.FloatField()),
                ('overall_maxdiff', models.FloatField()),
                ('word_votes', models.JSONField(default=list, help_text='Per prompt word, how many raters marked it.')),
                ('misaligned_words', models.JSONField(default=list, help_text='Indices the majority marked.')),
                ('prompt_misalignment_label', models.TextField(help_text='Release format: "1 0 1", 0 = misaligned.')),
                ('tagged_target', models.TextField(help_text='Model target: misaligned words suffixed "_0".')),
                ('keyword_unanimity', models.FloatField()),
                ('implausibility_map', models.FileField(max_length=255, upload_to='aggregates')),
                ('implausibility_max', models.FloatField()),
                ('implausibility_mean', models.FloatField()),
                ('implausibility_coverage', models.FloatField()),
                ('implausibility_points', models.PositiveIntegerField()),
                ('implausibility_iou', models.FloatField(blank=True, null=True)),
                ('implausibility_cc', models.FloatField(blank=True, null=True)),
                ('misalignment_map', models.FileField(max_length=255, upload_to='aggregates')),
                ('misalignment_max', models.FloatField()),
                ('misalignment_mean', models.FloatField()),
                ('misalignment_coverage', models.FloatField()),
                ('misalignment_points', models.PositiveIntegerField()),
                ('misalignment_iou', models.FloatField(blank=True, null=True)),
                ('misalignment_cc', models.FloatField(blank=True, null=True)),
                ('computed_at', models.DateTimeField()),
                ('item', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='aggregate', to='annotation.item')),
            ],
            options={
                'ordering': ['item_id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('n_annotations__gte', 1)), name='itemaggregate_n_annotations_positive'), models.CheckConstraint(condition=models.Q(('plausibility_mean__gte', 1), ('plausibility_mean__lte', 5)), name='itemaggregate_plausibility_mean_range'), models.CheckConstraint(condition=models.Q(('alignment_mean__gte', 1), ('alignment_mean__lte', 5)), name='itemaggregate_alignment_mean_range'), models.CheckConstraint(condition=models.Q(('aesthetics_mean__gte', 1), ('aesthetics_mean__lte', 5)), name='itemaggregate_aesthetics_mean_range'), models.CheckConstraint(condition=models.Q(('overall_mean__gte', 1), ('overall_mean__lte', 5)), name='itemaggregate_overall_mean_range'), models.CheckConstraint(condition=models.Q(('plausibility_normalised__gte', 0), ('plausibility_normalised__lte', 1)), name='itemaggregate_plausibility_normalised_range'), models.CheckConstraint(condition=models.Q(('alignment_normalised__gte', 0), ('alignment_normalised__lte', 1)), name='itemaggregate_alignment_normalised_range'), models.CheckConstraint(condition=models.Q(('aesthetics_normalised__gte', 0), ('aesthetics_normalised__lte', 1)), name='itemaggregate_aesthetics_normalised_range'), models.CheckConstraint(condition=models.Q(('overall_normalised__gte', 0), ('overall_normalised__lte', 1)), name='itemaggregate_overall_normalised_range'), models.CheckConstraint(condition=models.Q(('plausibility_maxdiff__gte', 0), ('plausibility_maxdiff__lte', 1)), name='itemaggregate_plausibility_maxdiff_range'), models.CheckConstraint(condition=models.Q(('alignment_maxdiff__gte', 0), ('alignment_maxdiff__lte', 1)), name='itemaggregate_alignment_maxdiff_range'), models.CheckConstraint(condition=models.Q(('aesthetics_maxdiff__gte', 0), ('aesthetics_maxdiff__lte', 1)), name='itemaggregate_aesthetics_maxdiff_range'), models.CheckConstraint(condition=models.Q(('overall_maxdiff__gte', 0), ('overall_maxdiff__lte', 1)), name='itemaggregate_overall_maxdiff_range'), models.CheckConstraint(condition=models.Q(('keyword_unanimity__gte', 0), ('keyword_unanimity__lte', 1)), name='itemaggregate_keyword_unanimity_range'), models.CheckConstraint(condition=models.Q(('implausibility_max__gte', 0), ('implausibility_max__lte', 1)), name='itemaggregate_implausibility_max_range'), models.CheckConstraint(condition=models.Q(('implausibility_mean__gte', 0), ('implausibility_mean__lte', 1)), name='itemaggregate_implausibility_mean_range'), models.CheckConstraint(condition=models.Q(('implausibility_coverage__gte', 0), ('implausibility_coverage__lte', 1)), name='itemaggregate_implausibility_coverage_range'), models.CheckConstraint(condition=models.Q(('misalignment_max__gte', 0), ('misalignment_max__lte', 1)), name='itemaggregate_misalignment_max_range'), models.CheckConstraint(condition=models.Q(('misalignment_mean__gte', 0), ('misalignment_mean__lte', 1)), name='itemaggregate_misalignment_mean_range'), models.CheckConstraint(condition=models.Q(('misalignment_coverage__gte', 0), ('misalignment_coverage__lte', 1)), name='itemaggregate_misalignment_coverage_range'), models.CheckConstraint(condition=models.Q(('implausibility_iou__isnull', True), models.Q(('implausibility_iou__gte', 0), ('implausibility_iou__lte', 1)), _connector='OR'), name='itemaggregate_implausibility_iou_range'), models.CheckConstraint(condition=models.Q(('misalignment_iou__isnull', True), models.Q(('misalignment_iou__gte', 0), ('misalignment_iou__lte', 1)), _connector='OR'), name='itemaggregate_misalignment_iou_range'), models.CheckConstraint(condition=models.Q(('implausibility_cc__isnull', True), models.Q(('implausibility_cc__gte', -1), ('implausibility_cc__lte', 1)), _connector='OR'), name='itemaggregate_implausibility_cc_range'), models.CheckConstraint(condition=models.Q(('misalignment_cc__isnull', True), models.Q(('misalignment_cc__gte', -1), ('misalignment_cc__lte', 1)), _connector='OR'), name='itemaggregate_misalignment_cc_range')],
            },
        ),
    ]
