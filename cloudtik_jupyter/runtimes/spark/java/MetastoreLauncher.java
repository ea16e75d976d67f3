// The Hive metastore's Thrift server on ONE address: `java cloudtik.MetastoreLauncher HOST PORT`.
//
// Hive 2.3's own main (HiveMetaStore) binds every interface; this builds the same handler and serves it on
// HOST only. Its configuration (backend database, warehouse) comes from -D system properties, which
// HiveConf reads. Compiled on each machine by Janino from pyspark's jars (launcher.py): write Java 5 style.
package cloudtik;

import java.net.InetAddress;
import java.net.InetSocketAddress;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.RetryingHMSHandler;
import org.apache.hadoop.hive.metastore.api.ThriftHiveMetastore;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;

public class MetastoreLauncher {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: MetastoreLauncher HOST PORT");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        HiveConf conf = new HiveConf(HiveMetaStore.class);
        // Opens (or creates) the backend database and the default database before anything listens.
        HiveMetaStore.HMSHandler base = new HiveMetaStore.HMSHandler("cloudtik metastore", conf, false);
        IHMSHandler handler = RetryingHMSHandler.getProxy(conf, base, false);
        TServerSocket socket = new TServerSocket(new InetSocketAddress(InetAddress.getByName(host), port));
        TThreadPoolServer.Args serverArgs = new TThreadPoolServer.Args(socket);
        serverArgs.processor(new ThriftHiveMetastore.Processor(handler));
        serverArgs.protocolFactory(new TBinaryProtocol.Factory());
        serverArgs.minWorkerThreads = 2;  // Hive's default keeps 200 idle threads
        serverArgs.maxWorkerThreads = 64;
        TThreadPoolServer server = new TThreadPoolServer(serverArgs);
        System.out.println("hive metastore listening on " + host + ":" + port);
        server.serve();
    }
}
