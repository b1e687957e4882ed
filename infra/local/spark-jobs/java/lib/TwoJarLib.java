package io.sparkgateway.examples.lib;

/**
 * The second jar of the two-jar example job: only this jar holds this class, so a task that calls it fails with
 * NoClassDefFoundError unless the jar reached the executors. Reports where its own code was loaded from.
 */
public final class TwoJarLib {
    private TwoJarLib() {}

    public static long square(long value) {
        return value * value;
    }

    /** The jar this class was loaded from, as seen by the code that runs. */
    public static String origin() {
        return TwoJarLib.class.getProtectionDomain().getCodeSource().getLocation().toString();
    }
}
