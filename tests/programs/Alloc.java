// Alloc.java - a multi-threaded allocation test for `umn trace --verify` with G1 (run once, outside CI;
// docs/process.md has the command and the result): each thread keeps
// and drops large arrays so that G1 commits and uncommits heap regions.
import java.util.ArrayList;
import java.util.List;

public class Alloc {
    public static void main(String[] args) throws Exception {
        Thread[] threads = new Thread[4];
        for (int t = 0; t < threads.length; ++t) {
            threads[t] = new Thread(() -> {
                for (int round = 0; round < 40; ++round) {
                    List<byte[]> keep = new ArrayList<>();
                    for (int i = 0; i < 32; ++i) keep.add(new byte[1 << 20]);
                    keep.clear();
                }
            });
            threads[t].start();
        }
        for (Thread thread : threads) thread.join();
        System.gc();
        System.out.println("done");
    }
}
