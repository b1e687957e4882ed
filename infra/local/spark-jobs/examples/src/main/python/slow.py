"""A job that takes its time before it creates its SparkContext, then runs for a while.

Reached at local:///opt/spark/examples/src/main/python/slow.py. Usage: slow.py [seconds-before-context]
[seconds-running] (defaults 60 and 0). With a driverReadyTimeoutMillis shorter than the first argument the
driver process is up but never becomes ready in time: the operator's DriverReadyTimedOut.
"""

import sys
import time

from pyspark.sql import SparkSession


def main() -> None:
    before = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    running = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    print(f"slow job: waiting {before:g} s before creating the SparkContext", flush=True)
    time.sleep(before)
    spark = SparkSession.builder.appName("PythonSlow").getOrCreate()
    time.sleep(running)
    print("slow job: done", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
