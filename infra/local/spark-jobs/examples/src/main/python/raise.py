"""A job that fails inside a task: the driver re-raises the task's exception and exits non-zero.

Reached at local:///opt/spark/examples/src/main/python/raise.py. The exception text names this job, so a test
can find it in the application's outcome message (the driver's last error line).
"""

from pyspark.sql import SparkSession

MESSAGE = "spark-gateway example job failed on purpose"


def explode(value: int) -> int:
    if value == 3:
        raise ValueError(f"{MESSAGE} (task saw value {value})")
    return value


def main() -> None:
    spark = SparkSession.builder.appName("PythonRaise").getOrCreate()
    try:
        spark.sparkContext.parallelize(range(8), 2).map(explode).collect()
    except Exception as error:  # noqa: BLE001 - the driver reports the task's exception as its own
        spark.stop()
        # Py4J wraps the task's traceback in a long Java error; name the task's own line.
        detail = next((line.strip() for line in str(error).splitlines() if MESSAGE in line), type(error).__name__)
        raise RuntimeError(f"{MESSAGE}: a task raised {detail}") from error


if __name__ == "__main__":
    main()
