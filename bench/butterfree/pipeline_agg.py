"""Case (b) on Butterfree: an AggregatedFeatureSet with rolling windows.

    python pipeline_agg.py --input DATA_DIR --out OUT_DIR [--workdir DIR] [--expected FIXTURE_DIR]

FileReader(parquet, DATA_DIR) -> Source("select * from events") -> AggregatedFeatureSet
`events_agg_features` (key id, timestamp from ts): avg, sum, count and max of amount over 1, 7
and 30-day rolling windows (Butterfree's default slide of 1 day), run with end_date 2024-03-31
(the data covers 2024-01-01 .. 2024-03-30); the same writers as case (a)
(common.batch_sink). Borboleta's side is AGG_SPEC in bench/run.py, run with
`--end-date 2024-03-31`.
"""

from common import ENTITY, batch_args, batch_sink, run_batch

NAME = "events_agg_features"
WINDOWS = ["1 day", "7 days", "30 days"]
END_DATE = "2024-03-31"


def build_pipeline(input_path, out_path):
    from butterfree.constants import DataType
    from butterfree.extract import Source
    from butterfree.extract.readers import FileReader
    from butterfree.pipelines import FeatureSetPipeline
    from butterfree.transform.aggregated_feature_set import AggregatedFeatureSet
    from butterfree.transform.features import Feature, KeyFeature, TimestampFeature
    from butterfree.transform.transformations import AggregatedTransform
    from butterfree.transform.utils import Function
    from pyspark.sql import functions as F

    feature_set = AggregatedFeatureSet(
        name=NAME,
        entity=ENTITY,
        description="rolling-window aggregations of amount",
        keys=[KeyFeature(name="id", description="entity id", dtype=DataType.BIGINT)],
        timestamp=TimestampFeature(from_column="ts"),
        features=[
            Feature(
                name="amount",
                description="amount aggregations",
                transformation=AggregatedTransform(functions=[
                    Function(F.avg, DataType.DOUBLE),
                    Function(F.sum, DataType.DOUBLE),
                    Function(F.count, DataType.BIGINT),
                    Function(F.max, DataType.DOUBLE),
                ]),
            )
        ],
    ).with_windows(definitions=WINDOWS)

    return FeatureSetPipeline(
        source=Source(
            readers=[FileReader(id="events", path=input_path, format="parquet")],
            query="select * from events",
        ),
        feature_set=feature_set,
        sink=batch_sink(out_path),
    )


if __name__ == "__main__":
    run_batch("agg", NAME, build_pipeline, batch_args(__doc__), end_date=END_DATE)
