"""Estimates Pi by throwing darts at the unit square: the seed's pi-test job, written for this repository.

Reached by the operator simulator's real execution mode at the seed's path
local:///opt/spark/examples/src/main/python/pi.py. Usage: pi.py [partitions] (default 2). Prints
"Pi is roughly <value>" on stdout, the line the demo and the system tests look for in the driver log.
"""

import random
import sys
from operator import add

from pyspark.sql import SparkSession


def inside(_: int) -> int:
    x = random.random() * 2 - 1
    y = random.random() * 2 - 1
    return 1 if x * x + y * y <= 1 else 0


def main() -> None:
    partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    samples = 100_000 * partitions
    spark = SparkSession.builder.appName("PythonPi").getOrCreate()
    hits = spark.sparkContext.parallelize(range(samples), partitions).map(inside).reduce(add)
    print(f"Pi is roughly {4.0 * hits / samples:f}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
