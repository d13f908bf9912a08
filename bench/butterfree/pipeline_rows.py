"""Case (a) on Butterfree: a row-level FeatureSet.

    python pipeline_rows.py --input DATA_DIR --out OUT_DIR [--workdir DIR] [--expected FIXTURE_DIR]

FileReader(parquet, DATA_DIR) -> Source("select * from events") -> FeatureSet
`events_row_features` (key id, timestamp from ts, 4 features) -> HistoricalFeatureStoreWriter
(OUT_DIR/historical/user/events_row_features) + OnlineFeatureStoreWriter (debug view), then a
count of the online view (common.run_batch). The features, in output order:

- amount_x2: SQLExpressionTransform `amount * 2`;
- category_group: SQLExpressionTransform, a CASE over category (A < cat_05 <= B < cat_10 <= C);
- amount__log1p: SparkFunctionTransform log1p;
- amount__avg_over_7_days_fixed_windows: SparkFunctionTransform avg over a 7-day fixed window
  partitioned by id.

Borboleta's side is ROWS_SPEC in bench/run.py; the streaming case (c) uses the first three
(`row_features(with_window=False)`).
"""

from common import ENTITY, batch_args, batch_sink, run_batch

NAME = "events_row_features"


def row_features(with_window=True):
    """The features of (a); without the window, those of (c) (a stream cannot use it)."""
    from butterfree.constants import DataType
    from butterfree.transform.features import Feature
    from butterfree.transform.transformations import SparkFunctionTransform, SQLExpressionTransform
    from butterfree.transform.utils import Function
    from pyspark.sql import functions as F

    features = [
        Feature(
            name="amount_x2",
            description="amount times two",
            dtype=DataType.DOUBLE,
            transformation=SQLExpressionTransform(expression="amount * 2"),
        ),
        Feature(
            name="category_group",
            description="CASE over category",
            dtype=DataType.STRING,
            transformation=SQLExpressionTransform(
                expression="CASE WHEN category < 'cat_05' THEN 'A' "
                "WHEN category < 'cat_10' THEN 'B' ELSE 'C' END"
            ),
        ),
        Feature(  # output column amount__log1p
            name="amount",
            description="log(amount + 1)",
            transformation=SparkFunctionTransform(functions=[Function(F.log1p, DataType.DOUBLE)]),
        ),
    ]
    if with_window:
        features.append(
            Feature(  # output column amount__avg_over_7_days_fixed_windows
                name="amount",
                description="avg amount of the entity over the last 7 days",
                transformation=SparkFunctionTransform(
                    functions=[Function(F.avg, DataType.DOUBLE)]
                ).with_window(partition_by="id", mode="fixed_windows", window_definition=["7 days"]),
            )
        )
    return features


def build_pipeline(input_path, out_path):
    from butterfree.constants import DataType
    from butterfree.extract import Source
    from butterfree.extract.readers import FileReader
    from butterfree.pipelines import FeatureSetPipeline
    from butterfree.transform import FeatureSet
    from butterfree.transform.features import KeyFeature, TimestampFeature

    return FeatureSetPipeline(
        source=Source(
            readers=[FileReader(id="events", path=input_path, format="parquet")],
            query="select * from events",
        ),
        feature_set=FeatureSet(
            name=NAME,
            entity=ENTITY,
            description="row-level features over events",
            keys=[KeyFeature(name="id", description="entity id", dtype=DataType.BIGINT)],
            timestamp=TimestampFeature(from_column="ts"),
            features=row_features(),
        ),
        sink=batch_sink(out_path),
    )


if __name__ == "__main__":
    run_batch("rows", NAME, build_pipeline, batch_args(__doc__))
