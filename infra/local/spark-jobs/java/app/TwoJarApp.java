package io.sparkgateway.examples.app;

import io.sparkgateway.examples.lib.TwoJarLib;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The application jar of the two-jar example job: its tasks run a closure of this jar that calls TwoJarLib from
 * the other jar. Prints the sum of squares and, for each jar, where the tasks loaded its code from.
 * Usage: TwoJarApp [count] (default 1000).
 */
public final class TwoJarApp {
    private TwoJarApp() {}

    /** The jar this class was loaded from, as seen by the code that runs. */
    static String origin() {
        return TwoJarApp.class.getProtectionDomain().getCodeSource().getLocation().toString();
    }

    public static void main(String[] args) {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        SparkSession spark = SparkSession.builder().appName("TwoJarApp").getOrCreate();
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Long> values = new ArrayList<>();
        for (long i = 1; i <= count; i++) {
            values.add(i);
        }
        JavaRDD<Long> numbers = jsc.parallelize(values, 2);
        long sum = numbers.map(TwoJarLib::square).reduce(Long::sum);
        List<String> origins = numbers.mapPartitions(part -> List.of("app=" + origin(), "lib=" + TwoJarLib.origin()).iterator()).collect();
        System.out.println("Sum of squares of 1.." + count + " is " + sum);
        System.out.println("Task code came from: " + String.join(" ", new TreeSet<>(origins)));
        spark.stop();
    }
}
